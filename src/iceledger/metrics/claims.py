"""The claims register held against the record.

Each public claim (src/iceledger/data/facts/claims.csv, or the user's copy) names the metric and period it
is about, and, when it states a figure, the definition its speaker used. `check_claims` computes the
metric over the claim's period and reads the result under every definition — convicted only,
convicted or pending charges (what officials call "criminal"), no conviction, no conviction and no
charge, a violent conviction (where the metric's records carry a crime class) and the count — so
the gap between claim and record is never hidden behind a definition.

Claims about other things than who is arrested (detainers declined, deaths per bed-day) name a
whole-period metric that gives that figure (FIGURE_COLUMNS), and are read under it and the count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import ibis

from iceledger.errors import Location, SourceError
from iceledger.facts import CLAIM_DEFINITIONS, Claim, facts_file, load_claims
from iceledger.metrics.capabilities import (
    KEY_DATES,
    caveat_texts,
    national_reach,
    refusal_texts,
)
from iceledger.metrics.published_series import table_names
from iceledger.metrics.registry import (
    REGISTRY,
    Metric,
    MetricParams,
    NationalFigure,
    NotMeasurable,
    NotServable,
    compute,
)

# The status of a claim whose metric the records cannot measure (a column they lack).
NOT_MEASURABLE = "not measurable"
# The columns a metric must give for its shares to be read under every definition.
SHARE_COLUMNS = tuple(
    f"{prefix}_{part}"
    for prefix in ("no_conviction", "no_conviction_no_charge")
    for part in ("share", "ci_low", "ci_high")
)
# Other claimed figures, by definition: the whole-period row's value and 95% interval columns
# (None: the figure has no interval).
FIGURE_COLUMNS = {
    "detainers_declined": ("released_or_declined_share", "released_or_declined_ci_low",
                           "released_or_declined_ci_high"),
    "deaths_per_100k_bed_days": ("deaths_per_100k_bed_days", None, None),
}


@dataclass(frozen=True)
class Reading:
    """The observed value under one definition, beside the claimed value if the claim used it."""

    definition: str  # a key of CLAIM_DEFINITIONS
    observed: float | None
    ci_low: float | None
    ci_high: float | None
    claimed: float | None

    @property
    def gap(self) -> float | None:
        """Observed minus claimed (for shares, in share units: 0.05 is 5 percentage points)."""
        if self.observed is None or self.claimed is None:
            return None
        return self.observed - self.claimed


@dataclass(frozen=True)
class ClaimCheck:
    claim: Claim
    # "checked", "not checked" (no metric can test it), "no data" or NOT_MEASURABLE (the records
    # lack what the metric needs: the note says what)
    status: str
    note: str  # why not checked, or how the data's span differs from the claim's period
    covered_start: date | None = None
    covered_end: date | None = None
    readings: tuple[Reading, ...] = ()
    tables: tuple[str, ...] = ()
    # Why the observed readings are not shown (public mode: they could give away a count under
    # k); the readings then carry only the claimed values.
    withheld: str = ""

    @property
    def tested_over(self) -> str:
        """The claim's period, and the part of it the records cover: what a reader needs to know
        of every row, checked or not (an unchecked row has no coverage, but its period)."""
        period = (f"{self.claim.period_start} to "
                  f"{self.claim.period_end or 'the end of the data'}")
        if self.covered_start is None:
            return period
        return f"{period}; the records cover {self.covered_start} to {self.covered_end}"

    @property
    def verdict(self) -> str:
        """One line: how the claimed figure stands against the record under its own definition."""
        if self.withheld:
            return self.withheld
        if self.status != "checked":
            return f"{self.status}: {self.note}" if self.note else self.status
        stated = next((r for r in self.readings if r.claimed is not None), None)
        if stated is None:
            return "no figure claimed: what the record shows under every definition is listed"
        if stated.observed is None:
            return "not measurable: the records give no value under the claim's definition"
        if stated.ci_low is not None and stated.ci_low <= stated.claimed <= stated.ci_high:
            return "consistent with the record under the claim's own definition"
        side = "above" if stated.claimed > stated.observed else "below"
        return f"the claimed figure is {side} what the record shows under its own definition"


def _claims_error(claim: Claim, problem: str) -> SourceError:
    return SourceError(Location(str(facts_file("claims.csv")), row=claim.line), problem)


def _metric_for(claim: Claim) -> Metric:
    metric = REGISTRY.get(claim.metric)
    if metric is None:
        raise _claims_error(claim, f"claim {claim.claim_id!r}: no metric named {claim.metric!r}")
    return metric


def _complement(share: float | None, low: float | None, high: float | None) -> tuple:
    """1 - share; the Wilson interval of a complement is the complement of the interval."""
    if share is None:
        return None, None, None
    return 1 - share, 1 - high, 1 - low


def _share(row: dict, prefix: str) -> tuple:
    """(share, 95% low, 95% high) of one share the metric gives; all None if it gives none."""
    return tuple(row.get(f"{prefix}_{part}") for part in ("share", "ci_low", "ci_high"))


def _readings(row: dict, count_column: str | None, claim: Claim) -> tuple[Reading, ...]:
    if all(c in row for c in SHARE_COLUMNS):
        no_conviction = _share(row, "no_conviction")
        neither = _share(row, "no_conviction_no_charge")
        values = {
            "convicted": _complement(*no_conviction),
            "convicted_or_pending": _complement(*neither),
            "no_conviction": no_conviction,
            "no_conviction_no_charge": neither,
            # Only book-in metrics carry a crime class: for arrests the reading is not measurable.
            "violent_conviction": _share(row, "violent_conviction"),
        }
    else:
        values = {definition: tuple(row.get(c) if c else None for c in columns)
                  for definition, columns in FIGURE_COLUMNS.items() if columns[0] in row}
    if count_column:
        values["count"] = (float(row[count_column]), None, None)
    return tuple(
        Reading(definition, *values[definition],
                claim.claimed_value if claim.claimed_definition == definition else None)
        for definition in CLAIM_DEFINITIONS if definition in values
    )


def _coverage_note(claim: Claim, start: date | None, end: date | None) -> str:
    asked = f"{claim.period_start}..{claim.period_end or 'end of data'}"
    if start is None:
        return f"the data cover no day of the claim's period {asked}"
    short = start > claim.period_start or (claim.period_end is not None and end < claim.period_end)
    return f"the data cover only {start}..{end} of the claim's period {asked}" if short else ""


def check_claim(backend: ibis.BaseBackend, claim: Claim) -> ClaimCheck:
    if not claim.metric:
        return ClaimCheck(claim, "not checked", claim.note or "no metric can test this claim yet")
    metric = _metric_for(claim)
    params = MetricParams(start=claim.period_start, end=claim.period_end)
    # Names with a dot are the project's own data files (deaths.csv), not tables.
    present = set(table_names(backend))
    missing = [t for t in metric.tables if "." not in t and t not in present]
    if missing:
        return ClaimCheck(claim, "no data", "the warehouse lacks a table it needs: "
                          + ", ".join(missing), tables=metric.tables)
    # The register's claims are of the whole country: records of part of it cannot test them.
    partial, unknown = national_reach(
        backend, [NationalFigure(t, "the claim") for t in metric.tables if t in KEY_DATES], params)
    if partial:
        return ClaimCheck(claim, NOT_MEASURABLE, "; ".join(refusal_texts(partial)),
                          tables=metric.tables)
    reach = caveat_texts(unknown)
    try:
        result = compute(metric.name, backend, params)
    except NotMeasurable as exc:
        return ClaimCheck(claim, NOT_MEASURABLE, str(exc).removeprefix(NotMeasurable.PREFIX),
                          tables=metric.tables)
    except NotServable as exc:
        return ClaimCheck(claim, "no data", str(exc), tables=metric.tables)
    columns = set(result.column_names)
    figures = set(SHARE_COLUMNS) <= columns or any(
        value in columns for value, _, _ in FIGURE_COLUMNS.values())
    missing = [c for c in ("period_start", "period_end", metric.count_column)
               if c and c not in columns]
    if missing or not figures or result.num_rows != 1:
        raise _claims_error(
            claim,
            f"claim {claim.claim_id!r}: metric {metric.name!r} does not give one whole-period row "
            "of criminality shares or of another claimed figure; use a *_period metric",
        )
    if (claim.claimed_definition in FIGURE_COLUMNS
            and FIGURE_COLUMNS[claim.claimed_definition][0] not in columns):
        raise _claims_error(
            claim,
            f"claim {claim.claim_id!r}: metric {metric.name!r} gives no "
            f"{claim.claimed_definition} figure",
        )
    if (claim.claimed_definition == "violent_conviction"
            and "violent_conviction_share" not in result.column_names):
        raise _claims_error(
            claim,
            f"claim {claim.claim_id!r}: metric {metric.name!r} gives no violent-conviction share "
            "(only book-ins carry a crime class); use book_in_violent_conviction_period",
        )
    row = result.to_pylist()[0]
    start, end = row["period_start"], row["period_end"]
    note = "; ".join(filter(None, [_coverage_note(claim, start, end), *reach]))
    if start is None:
        return ClaimCheck(claim, "no data", note, tables=metric.tables)
    return ClaimCheck(
        claim, "checked", note, start, end, _readings(row, metric.count_column, claim),
        metric.tables,
    )


def check_claims(backend: ibis.BaseBackend) -> list[ClaimCheck]:
    claims = load_claims()
    for claim in claims:  # every claim names a real metric before any is computed
        if claim.metric:
            _metric_for(claim)
    return [check_claim(backend, claim) for claim in claims]
