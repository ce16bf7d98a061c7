"""Who is targeted: the criminality mix of arrests, book-ins and the detained population.

ICE labels each person with one of three classes: Convicted Criminal, Pending Criminal Charges,
Other Immigration Violator (neither). Public statements and analysts count "criminals" differently, so
every metric here shows both headline shares side by side:

- no conviction = (pending charges + neither) / records with a recorded criminality;
- no conviction and no charge = neither / records with a recorded criminality;

each with a 95% Wilson score interval, computed as an Ibis expression so it runs on every backend.
"""

from __future__ import annotations

from datetime import date

import ibis
import pyarrow as pa
from ibis import _

from iceledger.errors import IceledgerError
from iceledger.facts import load_events, load_targets
from iceledger.metrics.backends import memtable
from iceledger.metrics.detention import BOOK_OUTS, daily_population
from iceledger.metrics.published_series import snapshots
from iceledger.metrics.registry import (
    SPLIT_KEYS,
    Disclosure,
    Metric,
    MetricParams,
    Need,
    View,
    register,
)
from iceledger.metrics.volume import (
    ARREST_DIMENSIONS,
    ARREST_EPISODES,
    ARREST_FILTERS,
    STAY_IDENTIFIERS,
    apply_filters,
    covered_days,
    during,
    foia_events,
)
from iceledger.tables import (
    FOIA_ARRESTS,
    FOIA_RELEASES,
    FOIA_STAYS,
    STATS_DETAINED_NOW,
    STATS_WORKBOOKS,
)

CONVICTED = "Convicted Criminal"
PENDING = "Pending Criminal Charges"
NEITHER = "Other Immigration Violator"
Z_95 = 1.959963984540054  # standard normal quantile for a two-sided 95% interval

# Each headline definition: the column prefix and the criminality classes it counts.
HEADLINE_DEFINITIONS = {
    "no_conviction": (PENDING, NEITHER),
    "no_conviction_no_charge": (NEITHER,),
}


# The columns of criminality_mix counting one criminality each.
CLASS_COLUMNS = (("criminality_unknown", "criminality", None),
                 ("convicted", "criminality", CONVICTED),
                 ("pending_charges", "criminality", PENDING),
                 ("other_immigration_violator", "criminality", NEITHER))


def criminality_need(table: str) -> Need:
    return Need(table, "criminality", "the mix is the share of each of ICE's criminality classes")


# What each population's mix needs beyond its criminality: how its records are counted.
COUNTED_AS = {FOIA_ARRESTS: (ARREST_EPISODES,), FOIA_STAYS: (STAY_IDENTIFIERS,)}


def wilson_interval(successes: ibis.Value, trials: ibis.Value, z: float = Z_95):
    """The Wilson score interval for successes/trials; NULL bounds when there are no trials."""
    n = trials.cast("float64").nullif(0)
    p = successes.cast("float64") / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half_width = z * (p * (1 - p) / n + z2 / (4 * n * n)).sqrt() / denominator
    # At 0 or all successes a bound is exactly 0 or 1, which floating point only approximates.
    none = ibis.null("float64")
    low = ibis.ifelse(successes == 0, 0.0, centre - half_width)
    high = ibis.ifelse(successes == trials, 1.0, centre + half_width)
    return ibis.ifelse(n.notnull(), low, none), ibis.ifelse(n.notnull(), high, none)


def share_with_interval(successes: ibis.Value, trials: ibis.Value):
    """(share, 95% low, 95% high); all NULL when there are no trials."""
    low, high = wilson_interval(successes, trials)
    return successes.cast("float64") / trials.cast("float64").nullif(0), low, high


def share_columns(prefix: str, successes: ibis.Value, trials: ibis.Value) -> dict[str, ibis.Value]:
    share, low, high = share_with_interval(successes, trials)
    return {f"{prefix}_share": share, f"{prefix}_ci_low": low, f"{prefix}_ci_high": high}


def criminality_mix(
    rows: ibis.Table, keys: list[str], total: str, weight: str | None = None
) -> ibis.Table:
    """Per group: the records, each class's count, and both headline shares with intervals.

    `weight` names a column holding how many people a row stands for (1 per row when None).
    """
    size = rows[weight] if weight else 1

    def count(label: str | None):
        matches = rows.criminality.isnull() if label is None else rows.criminality == label
        return ibis.ifelse(matches, size, 0).sum()

    counts = (rows.group_by(keys) if keys else rows).aggregate(
        **{total: rows[weight].sum() if weight else rows.count()},
        criminality_unknown=count(None),
        convicted=count(CONVICTED),
        pending_charges=count(PENDING),
        other_immigration_violator=count(NEITHER),
    )
    known = counts.convicted + counts.pending_charges + counts.other_immigration_violator
    by_class = {PENDING: counts.pending_charges, NEITHER: counts.other_immigration_violator}
    shares = {}
    for prefix, classes in HEADLINE_DEFINITIONS.items():
        shares.update(share_columns(prefix, sum(by_class[c] for c in classes), known))
    return counts.mutate(**shares).order_by(keys) if keys else counts.mutate(**shares)


_BOTH_DEFINITIONS = (
    "Shares are of records with a recorded criminality; records with none are counted in "
    "criminality_unknown and left out of the shares. 'No conviction' counts pending charges and "
    "neither; 'no conviction and no charge' counts neither. Official statements that call "
    "pending charges 'criminal' correspond to 1 - no_conviction_no_charge_share."
)
_INTERVAL_CAVEAT = (
    "The 95% Wilson intervals treat the records as draws from the enforcement process; they "
    "describe random variation of a share, not errors in ICE's labels."
)
_CRIMINALITY_CAVEAT = (
    "Criminality is ICE's own label at the time of the event; a conviction may be for any "
    "offence, including immigration or traffic offences."
)


def mix_metric(
    *, name: str, title: str, definition: str, build, tables: tuple[str, ...], total: str,
    dimensions: tuple[str, ...], filters: tuple[str, ...], caveats: tuple[str, ...] = (),
    needs: tuple[Need, ...] = (),
    view: View | None = None,
) -> Metric:
    """Register a criminality-mix metric: the counts of each class and both headline shares."""
    return register(
        Metric(
            name=name,
            title=title,
            question="targeting",
            definition=f"{definition} {_BOTH_DEFINITIONS}",
            unit="records; share (0-1) with 95% interval",
            caveats=(_INTERVAL_CAVEAT, _CRIMINALITY_CAVEAT, *caveats),
            tables=tables,
            build=build,
            dimensions=dimensions,
            filters=filters,
            count_column=total,
            needs=needs,
            disclosure=Disclosure(facts=("period_start", "period_end"), classes=CLASS_COLUMNS),
            view=view or both_shares(f"share of {total.replace('_', '-')}", "line"),
        )
    )


def both_shares(unit: str, mark: str) -> View:
    """The two headline definitions of "not a criminal" side by side, each with its interval."""
    return View("no_conviction_share", unit, mark, also=("no_conviction_no_charge_share",))


def period_bounds(windows, params: MetricParams) -> dict[str, ibis.Value]:
    days = covered_days(windows, params)
    return {
        "period_start": ibis.literal(days[0] if days else None, type="date"),
        "period_end": ibis.literal(days[-1] if days else None, type="date"),
    }


def _event_mix(table: str, when: str, total: str, monthly: bool):
    def build(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
        rows, windows = foia_events(backend, table, when, params)
        if monthly:
            rows = rows.mutate(month=rows.date.truncate("M"))
            return criminality_mix(rows, ["month", *params.by], total)
        mix = criminality_mix(rows, list(params.by), total)
        return mix.mutate(**period_bounds(windows, params)).relocate("period_start", "period_end")

    return build


BOOK_IN_DIMENSIONS = ("aor", "citizenship_country")

for _population, _table, _when, _total, _dims, _filters, _what in (
    ("arrest", FOIA_ARRESTS, "apprehension_date", "arrests", ARREST_DIMENSIONS, ARREST_FILTERS,
     "ICE arrest episodes (FOIA arrests, rows flagged is_duplicate left out) by apprehension "
     "criminality"),
    ("book_in", FOIA_STAYS, "stay_book_in", "book_ins", BOOK_IN_DIMENSIONS,
     ("aor", "citizenship_country"),
     "Detention book-ins (FOIA stays, counted once per continuous custody) by book-in criminality"),
):
    _dims_no_crim = tuple(d for d in _dims if d != "criminality")
    mix_metric(
        name=f"{_population}_criminality",
        title=f"Criminality of {_total.replace('_', '-')}, by month",
        definition=f"{_what}, per month: counts of convicted, pending charges, neither and "
        f"unknown.",
        build=_event_mix(_table, _when, _total, monthly=True),
        tables=(_table, FOIA_RELEASES),
        total=_total,
        dimensions=_dims_no_crim,
        filters=_filters,
        needs=(criminality_need(_table), *COUNTED_AS[_table]),
    )
    mix_metric(
        name=f"{_population}_criminality_period",
        title=f"Criminality of {_total.replace('_', '-')} over a period",
        definition=f"{_what}, over the whole period asked for (--from/--to; the data's span by "
        f"default): "
        "counts of convicted, pending charges, neither and unknown; period_start and period_end "
        "give the days the data actually covers.",
        build=_event_mix(_table, _when, _total, monthly=False),
        tables=(_table, FOIA_RELEASES),
        total=_total,
        dimensions=_dims_no_crim,
        filters=_filters,
        needs=(criminality_need(_table), *COUNTED_AS[_table]),
        view=both_shares(f"share of {_total.replace('_', '-')}", "dots"),
    )


# --- the detained population, from the FOIA stays ------------------------------------------------


def population_mix(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    """People in custody at midnight per day (detention's sweep), by book-in criminality."""
    by_class = MetricParams(by=("criminality", *params.by), start=params.start, end=params.end,
                            filters=params.filters)
    population = daily_population(backend, by_class)
    return criminality_mix(population, ["date", *params.by], "population_midnight",
                           weight="population_midnight")


mix_metric(
    name="population_criminality",
    title="Criminality of the detained population (FOIA), by day",
    definition="People in ICE detention at midnight on each day, from the FOIA stays (a stay "
    "counts from its "
    "book-in to its book-out; open stays to the release's end), by book-in criminality: counts "
    "of convicted, pending charges, neither and unknown.",
    build=population_mix,
    tables=(FOIA_STAYS, FOIA_RELEASES),
    total="population_midnight",
    dimensions=BOOK_IN_DIMENSIONS,
    filters=("aor", "criminality", "citizenship_country"),
    needs=(criminality_need(FOIA_STAYS), BOOK_OUTS, STAY_IDENTIFIERS),
    view=both_shares("share of people detained", "line"),
    caveats=(
        "Early days of a release undercount people booked in before its coverage began, if the "
        "release leaves them out.",
        "Each day comes from the newest release covering it.",
    ),
)


# --- the detained population, as ICE publishes it ------------------------------------------------


def published_detained_mix(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    """Each snapshot of the 'currently detained by criminality' table, dated by its own date."""
    detained = backend.table(STATS_DETAINED_NOW)
    rows = detained.filter(detained.criminality != "Total")
    if "agency" not in params.by and "agency" not in params.filters:
        rows = rows.filter(rows.agency == "Total")
    rows = snapshots(backend, rows, ["criminality", "agency"], "detained")
    # A class ICE adds beside the three (the ingest warns of it) is none of theirs: counted with
    # the unknown, so that it stays in the total and out of the shares. Mapped after the
    # snapshots are chosen, so that two such classes are not taken for reprints of one.
    classes = rows.criminality
    rows = rows.mutate(criminality=ibis.ifelse(classes.isin((CONVICTED, PENDING, NEITHER)),
                                               classes, ibis.null(classes.type())))
    rows = during(apply_filters(rows, params), params, "date")
    return criminality_mix(rows, ["date", "workbook", *params.by], "detained", weight="detained")


mix_metric(
    name="detained_criminality",
    title="Criminality of the detained population, as ICE publishes it",
    definition="People in ICE detention on each snapshot date of the workbooks' 'Currently "
    "Detained by Criminality and Arresting Agency' table: the date the workbook's Footnotes "
    "sheet gives for it, else the workbook's printed 'data as of' date, else its file date; "
    "a snapshot printed by several workbooks (a year-end sheet reprinted the next year) is "
    "one row, from its first printing (workbook names it). All arresting agencies by default, "
    "ICE and CBP arrests apart with --by agency. The shares are recomputed from the three "
    "printed counts.",
    build=published_detained_mix,
    tables=(STATS_DETAINED_NOW, STATS_WORKBOOKS),
    total="detained",
    dimensions=("agency",),
    filters=("agency",),
    view=both_shares("share of people detained", "line"),
    caveats=(
        "A workbook re-posted under the same name with new figures appears twice on its date.",
        "A criminality class other than the three (none in the archived workbooks) is counted "
        "in criminality_unknown.",
        "ICE has printed stale 'data as of' lines (see the stats checks); the Footnotes sheet's "
        "date for the table is used where there is one, so such a line moves no figure.",
        "A figure exists only on a snapshot date a loaded workbook printed; nothing is known of "
        "the days between two snapshots, and the chart's line breaks at every calendar month "
        "without one rather than drawing across it.",
    ),
)


# --- custodial vs at-large -----------------------------------------------------------------------


def category_shares(rows: ibis.Table, keys: list[str], category: str, count: str) -> ibis.Table:
    """Counts per category within each group, and each category's share with a Wilson interval.

    Records with no category are shown with their count and no share.
    """
    counts = rows.group_by([*keys, category]).aggregate(**{count: _.count()})
    recorded = ibis.ifelse(counts[category].notnull(), counts[count], 0)
    group_total = recorded.sum().over(ibis.window(group_by=keys)) if keys else recorded.sum().over()
    counts = counts.mutate(**{f"{count}_with_{category}": group_total})
    recorded_row = counts[category].notnull()
    shares = share_with_interval(counts[count], counts[f"{count}_with_{category}"])
    return counts.mutate(
        **{
            column: ibis.ifelse(recorded_row, value, ibis.null("float64"))
            for column, value in zip(("share", "ci_low", "ci_high"), shares, strict=True)
        }
    ).order_by([*keys, category])


def arrest_setting_shares(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    rows, _windows = foia_events(backend, FOIA_ARRESTS, "apprehension_date", params)
    rows = rows.mutate(month=rows.date.truncate("M"))
    return category_shares(rows, ["month", *params.by], "arrest_setting", "arrests")


register(
    Metric(
        name="arrest_setting_share",
        title="Custodial and at-large arrests, by month",
        question="targeting",
        definition="ICE arrest episodes per month by arrest setting: custodial (taken from a jail "
        "or prison: CAP, 287(g), custodial arrests, probation and parole transfers), at-large "
        "(arrested in the community: located, non-custodial, worksite) or other, and each "
        "setting's share of the month's arrests with a recorded setting, with a 95% Wilson interval.",
        unit="arrests; share (0-1) with 95% interval",
        caveats=(
            _INTERVAL_CAVEAT,
            "The setting is grouped from Apprehension Method at load (docs/methodology.md); arrests "
            "with no method have no setting and no share.",
        ),
        tables=(FOIA_ARRESTS, FOIA_RELEASES),
        build=arrest_setting_shares,
        dimensions=tuple(d for d in ARREST_DIMENSIONS if d != "arrest_setting"),
        filters=ARREST_FILTERS,
        count_column="arrests",
        needs=(ARREST_EPISODES,),
        disclosure=Disclosure(
            keys=("arrest_setting",),
            totals=(("arrests_with_arrest_setting", "arrests", "arrest_setting"),),
        ),
        view=View("share", "share of arrests", group="arrest_setting"),
    )
)


# --- change before and after a date --------------------------------------------------------------

SPLIT_FILTER = "split"


def split_days(params: MetricParams, days: list[date]) -> pa.Table:
    """The split dates asked for (--filter split=YYYY-MM-DD), else the dated events and targets."""
    if SPLIT_FILTER in params.filters:
        splits = []
        for text in params.filters[SPLIT_FILTER]:
            try:
                splits.append((date.fromisoformat(text), "split asked for"))
            except ValueError:
                raise IceledgerError(f"--filter split={text}: not a date (YYYY-MM-DD)") from None
    else:
        splits = default_splits()
    if days:
        splits = [(d, label) for d, label in splits if days[0] < d <= days[-1]]
    return pa.Table.from_pylist(
        [{"split_date": d, "split_event": label} for d, label in sorted(set(splits))],
        schema=pa.schema([("split_date", pa.date32()), ("split_event", pa.string())]),
    )


def default_splits() -> list[tuple[date, str]]:
    """The split dates, with their events, of a before/after metric asked for none: the confirmed
    dated events and the primary targets' starts."""
    splits = [(e.date.start, e.event) for e in load_events() if e.confirmed]
    return splits + [(t.effective_from, f"target {t.target_id} begins") for t in load_targets()
                     if t.status == "primary"]


def _shift(table: str, when: str):
    def build(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
        rows, windows = foia_events(backend, table, when, without_split(params))
        splits = memtable(split_days(params, covered_days(windows, params)))
        paired = rows.cross_join(splits)
        after = paired.date >= paired.split_date
        keys = ["split_date", "split_event", *params.by]

        def tally(side, classes):
            return ibis.ifelse(side & paired.criminality.isin(list(classes)), 1, 0).sum()

        sides = {"before": ~after, "after": after}
        counted = paired.group_by(keys).aggregate(
            **{f"{s}_records": tally(cond, (CONVICTED, PENDING, NEITHER))
               for s, cond in sides.items()},
            **{
                f"{s}_{prefix}": tally(cond, classes)
                for s, cond in sides.items()
                for prefix, classes in HEADLINE_DEFINITIONS.items()
            },
        )
        return ibis.union(
            *(share_difference(counted, keys, prefix) for prefix in HEADLINE_DEFINITIONS)
        ).order_by([*keys, "definition"])

    return build


def without_split(params: MetricParams) -> MetricParams:
    filters = {k: v for k, v in params.filters.items() if k != SPLIT_FILTER}
    return MetricParams(by=params.by, start=params.start, end=params.end, filters=filters)


def share_difference(counted: ibis.Table, keys: list[str], prefix: str) -> ibis.Table:
    """After minus before for one definition, with Newcombe's hybrid score interval."""
    p1, l1, u1 = share_with_interval(counted[f"before_{prefix}"], counted.before_records)
    p2, l2, u2 = share_with_interval(counted[f"after_{prefix}"], counted.after_records)
    difference = p2 - p1
    return counted.select(
        *keys,
        definition=ibis.literal(prefix),
        before_records=counted.before_records,
        before_share=p1, before_ci_low=l1, before_ci_high=u1,
        after_records=counted.after_records,
        after_share=p2, after_ci_low=l2, after_ci_high=u2,
        difference=difference,
        difference_ci_low=difference - ((p2 - l2) ** 2 + (u1 - p1) ** 2).sqrt(),
        difference_ci_high=difference + ((u2 - p2) ** 2 + (p1 - l1) ** 2).sqrt(),
        smaller_group=ibis.least(counted.before_records, counted.after_records),
    )


for _population, _table, _when, _dims, _filters, _what in (
    ("arrest", FOIA_ARRESTS, "apprehension_date", ARREST_DIMENSIONS, ARREST_FILTERS,
     "arrest episodes"),
    ("book_in", FOIA_STAYS, "stay_book_in", BOOK_IN_DIMENSIONS, ("aor", "citizenship_country"),
     "detention book-ins (stays)"),
):
    register(
        Metric(
            name=f"{_population}_criminality_shift",
            title=f"Criminality of {_what} before and after a date",
            question="targeting",
            definition=f"For each split date, the share of {_what} with no conviction, and with "
            "no conviction and no charge (one row per definition), before the date (from --from "
            "or the data's start, to the day before) and from the date on (to --to or the data's "
            "end), with 95% Wilson intervals, and the difference after minus before with "
            "Newcombe's hybrid score interval. Split dates: --filter split=YYYY-MM-DD (repeatable); "
            "by default every confirmed event in events.csv and every target start in targets.csv "
            "inside the data's span.",
            unit="share (0-1); difference in share",
            caveats=(
                _INTERVAL_CAVEAT,
                _CRIMINALITY_CAVEAT,
                "Before and after are the whole spans on either side of the split; a trend that "
                "began earlier shows up as a change at any split. Narrow the span with --from/--to.",
                "Records with no recorded criminality are left out of both sides.",
            ),
            tables=(_table, FOIA_RELEASES, "events.csv", "targets.csv"),
            build=_shift(_table, _when),
            dimensions=tuple(d for d in _dims if d != "criminality"),
            filters=(*_filters, SPLIT_FILTER),
            count_column="smaller_group",
            needs=(criminality_need(_table), *COUNTED_AS[_table]),
            disclosure=Disclosure(
                keys=SPLIT_KEYS, copies=("split_event",), splits=SPLIT_FILTER,
                nested=(("definition", "no_conviction_no_charge", "no_conviction"),),
            ),
            view=View("after_share", f"share of {_what.split(' (')[0].lower()}", "paired",
                      also=("before_share",)),
        )
    )
