"""The simulator's parameters, estimated from the FOIA records in the warehouse, with uncertainty.

Every estimate is computed once on the records as they are (replicate 0) and again on bootstrap
replicates (1..B). The warehouse is read once, as counts per cell (a class, a length in days,
an outcome, ...): a Poisson bootstrap resamples records by giving each a Poisson(1) weight, and
the weights of the n identical records of a cell sum to one Poisson(n) draw, so each replicate
redraws every cell count and never goes back to the warehouse. Arrest mixes are resampled by
whole weeks (days of one week are not independent).

A person's class is their criminality at stay book-in and the setting of the ICE arrest that
led to the stay (custodial, at-large, other); stays with no linked ICE arrest (book-ins after a
CBP arrest, among others) are a class of their own, "no ICE arrest", whose book-ins the strategies
do not change.

Stays and their censoring come from metrics/detention.py (cohort_stays: the stays booked in
during the period, from the release owning their book-in day, open stays censored at the release
end); the fit additionally censors at its own end, so a backtest never sees what happened after
the day it was fitted to. Lengths are whole midnights in custody, the unit of ICE's population
counts and of bed-days, and the length distribution is a Kaplan-Meier life table on that day
grid with competing outcomes (removal, voluntary departure, release, other) and hazards pooled
within age bands after the first week (AGE_BANDS), so that sparse tails stay estimable.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, datetime, time, timedelta

import ibis
import numpy as np
import pyarrow as pa
from ibis.common.exceptions import TableNotFound

from iceledger.errors import IceledgerError
from iceledger.facts import load_timeline
from iceledger.metrics.detention import cohort_stays, owned, reason_in, source_table
from iceledger.metrics.capabilities import caveat_texts, national_reach
from iceledger.metrics.registry import MetricParams, NationalFigure
from iceledger.metrics.targeting import CONVICTED
from iceledger.metrics.volume import during
from iceledger.tables import FOIA_ARRESTS, FOIA_ARREST_STAY_LINKS, FOIA_RELEASES, FOIA_STAYS

NO_ICE_ARREST = "no ICE arrest"
ARREST_SETTINGS = ("custodial", "at-large", "other")
OUTCOMES = ("removed", "voluntary_departure", "released", "other")
UNKNOWN = "Unknown"
# Ages (whole midnights since book-in) at which a new hazard band starts; the last band runs on
# for ever, so the mean stay has a geometric tail.
AGE_BANDS = (0, 1, 2, 3, 4, 5, 6, 7, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365, 545)
# The age grid: the last band's hazard holds from its first age on, so one age of it is enough.
MAX_AGE = AGE_BANDS[-1] + 1
TAIL_EVENTS = 5
BOOK_IN_DAYS = 10  # an arrest is booked in if a stay linked to it began within 10 days
RECENT_DAYS = 91  # "observed" rates: the last 13 weeks before the simulation starts
DEFAULT_REPLICATES = 200


class NotMeasurable(IceledgerError):
    def __init__(self, why: str):
        super().__init__(f"not measurable from these records: {why}")


REQUIRED_COLUMNS = {
    FOIA_STAYS: ("stay_id", "stay_book_in", "stay_book_out", "censored", "length_days",
                   "stay_release_reason", "criminality", "aor", "release"),
    FOIA_ARRESTS: ("record_id", "apprehension_date", "criminality", "arrest_setting", "aor",
                     "is_duplicate", "release"),
    FOIA_ARREST_STAY_LINKS: ("arrest_record_id", "stay_id"),
    FOIA_RELEASES: ("release", "coverage_end"),
}
WHY_NEEDED = {
    FOIA_STAYS: "lengths of stay and outcomes at book-out",
    FOIA_ARRESTS: "arrest volumes and mix",
    FOIA_ARREST_STAY_LINKS: "which arrests lead to a book-in",
    FOIA_RELEASES: "each release's coverage, for censoring",
}


def require_records(backend: ibis.BaseBackend) -> None:
    """Refuse, naming what is missing, when the FOIA tables or columns the model needs are
    absent."""
    for table, columns in REQUIRED_COLUMNS.items():
        try:
            present = set(backend.table(table).columns)
        except TableNotFound:
            raise NotMeasurable(
                f"the warehouse has no {table} table, needed for {WHY_NEEDED[table]}; ingest an "
                "ICE FOIA release (`iceledger ingest foia ...`)"
            ) from None
        missing = [c for c in columns if c not in present]
        if missing:
            raise NotMeasurable(
                f"{table} has no column(s) {', '.join(missing)}, needed for {WHY_NEEDED[table]}"
            )


@dataclass(frozen=True)
class Estimates:
    """Replicate 0 is the estimate on the records as they are; 1..B are bootstrap replicates."""

    classes: tuple[tuple[str, str], ...]  # (criminality, setting)
    offices: tuple[str, ...]
    start: date  # the first simulated day; the fit uses records before it
    leave: np.ndarray  # (R, C, MAX_AGE): P(book-out after exactly a midnights | held at a)
    outcome_share: np.ndarray  # (R, C, len(OUTCOMES), MAX_AGE): how those book-outs end
    book_in: np.ndarray  # (R, C): P(booked in within 10 days | ICE arrest); NaN for no ICE arrest
    violent_share: np.ndarray  # (R, C): share of removed stays with a violent conviction
    no_arrest_book_ins: np.ndarray  # (R, F, C): book-ins per day without an ICE arrest
    held_at_start: np.ndarray  # (F, C, MAX_AGE): people held at 00:00 of start, by age
    weekly_arrests: np.ndarray  # (W, F, C): ICE arrests per week of whole weeks before start
    recent_arrests: np.ndarray  # (F, C): ICE arrests per day over the last RECENT_DAYS
    counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    violent_measurable: bool = True
    # Where the records fitted are of part of the country (one field office's production), each
    # release saying which offices it names: national defaults (the target, the funded beds) do
    # not apply to them (strategies.national_default).
    part_of_country: tuple[str, ...] = ()

    @cached_property
    def stay_summary(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean midnights per stay (R, C), P(outcome) (R, C, O)) of the estimated curves."""
        return summarise_stays(self.leave, self.outcome_share)

    @property
    def replicates(self) -> int:
        return self.leave.shape[0]

    def class_index(self, criminality: str | None = None, setting: str | None = None) -> list[int]:
        return [i for i, (crim, sett) in enumerate(self.classes)
                if criminality in (None, crim) and setting in (None, sett)]

    @property
    def arrest_classes(self) -> np.ndarray:
        return np.array([setting != NO_ICE_ARREST for _, setting in self.classes])

    @property
    def convicted(self) -> np.ndarray:
        return np.array([crim == CONVICTED for crim, _ in self.classes])


def survival(leave: np.ndarray) -> np.ndarray:
    """S[..., a]: P(still held at the a-th midnight after book-in), a = 0..MAX_AGE."""
    kept = np.cumprod(1.0 - leave, axis=-1)
    ones = np.ones(leave.shape[:-1] + (1,))
    return np.concatenate([ones, kept], axis=-1)


def mean_stay(leave: np.ndarray, held: np.ndarray | None = None) -> np.ndarray:
    """Expected midnights in custody per book-in (bed-days per stay), the last band's hazard
    carried on past the age grid (a geometric tail). `held`: survival(leave), if known."""
    held = survival(leave) if held is None else held
    tail_hazard = leave[..., -1]
    tail = np.where(tail_hazard > 0, held[..., -1] * (1 - tail_hazard) / np.where(
        tail_hazard > 0, tail_hazard, 1.0), np.inf)
    return held[..., 1:].sum(axis=-1) + tail


def outcome_probability(leave: np.ndarray, outcome_share: np.ndarray,
                        held: np.ndarray | None = None) -> np.ndarray:
    """(..., C, outcomes): P(the stay ends in each outcome), the tail ending like the last band.
    `held`: survival(leave), if known."""
    held = survival(leave) if held is None else held
    leaving = held[..., :-1] * leave  # P(book-out after exactly a midnights)
    return np.einsum("...a,...oa->...o", leaving, outcome_share) + \
        held[..., -1, None] * outcome_share[..., -1]


def summarise_stays(leave: np.ndarray, outcome_share: np.ndarray):
    """(mean midnights per stay (..., C), P(outcome) (..., C, O)) from one survival curve."""
    held = survival(leave)
    return mean_stay(leave, held), outcome_probability(leave, outcome_share, held)


def _poisson(rng: np.random.Generator, counts: np.ndarray, replicates: int) -> np.ndarray:
    """Replicate 0: the counts; 1..B: Poisson-bootstrap redraws."""
    drawn = rng.poisson(counts, size=(replicates,) + counts.shape).astype(float)
    return np.concatenate([counts[None].astype(float), drawn], axis=0)


def life_table(ended: np.ndarray, censored: np.ndarray,
               beyond: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Daily hazards from stay counts by length (any leading axes: replicate, class).

    ended[..., o, L]: stays that ended after L midnights with outcome o; censored[..., L]: stays
    still held after L midnights when observation stopped. A stay that ended after L midnights
    was at risk at ages 0..L; one censored after L, at ages 0..L-1 (Kaplan-Meier's convention:
    censoring after the events of its time). Within an age band the hazard is events over
    exposure (person-days at risk); a band nobody reached takes the band before it, and a class
    with no stays at all is left NaN for the caller to fill.
    Lengths past the grid are counted at its last length, L = MAX_AGE + 1; `beyond[...]` is the
    person-days at risk they add past it (for each class).
    Returns leave (..., MAX_AGE) and outcome_share (..., o, MAX_AGE); the last age band's hazard
    carries on past the grid and pools bands back until it rests on TAIL_EVENTS book-outs.
    """
    events = ended.sum(axis=-2)  # (..., L)
    # at_risk[a] = ended with L >= a + censored with L > a
    ended_from = np.flip(np.cumsum(np.flip(events, -1), -1), -1)
    censored_after = np.flip(np.cumsum(np.flip(censored, -1), -1), -1)
    censored_after = np.concatenate(
        [censored_after[..., 1:], np.zeros_like(censored_after[..., :1])], axis=-1)
    at_risk = ended_from + censored_after
    edges = np.array(AGE_BANDS + (events.shape[-1],))
    band_events = np.add.reduceat(events, edges[:-1], axis=-1)
    band_exposure = np.add.reduceat(at_risk, edges[:-1], axis=-1)
    band_by_outcome = np.add.reduceat(ended, edges[:-1], axis=-1)
    if beyond is not None:
        band_exposure[..., -1] += beyond
    # The last band runs on for ever: pool it with the bands before it until it holds
    # TAIL_EVENTS book-outs, so a quiet tail does not read as nobody ever leaving.
    tail_events = np.flip(np.cumsum(np.flip(band_events, -1), -1), -1)
    tail_exposure = np.flip(np.cumsum(np.flip(band_exposure, -1), -1), -1)
    enough = tail_events >= TAIL_EVENTS
    last_enough = enough.shape[-1] - 1 - np.argmax(np.flip(enough, -1), axis=-1)
    last_enough = np.where(enough.any(axis=-1), last_enough, 0)[..., None]
    band_events[..., -1:] = np.take_along_axis(tail_events, last_enough, -1)
    band_exposure[..., -1:] = np.take_along_axis(tail_exposure, last_enough, -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        hazard = band_events / band_exposure
        share = band_by_outcome / band_by_outcome.sum(axis=-2, keepdims=True)
    hazard = _carry_forward(hazard)
    share = _carry_back(_carry_forward(share))
    widths = np.diff(np.minimum(edges, MAX_AGE))
    leave = np.repeat(hazard, widths, axis=-1)[..., :MAX_AGE]
    outcome_share = np.repeat(share, widths, axis=-1)[..., :MAX_AGE]
    return leave, outcome_share


def _carry_forward(values: np.ndarray) -> np.ndarray:
    """NaN bands (nobody at risk, or no book-outs to split) take the last band with a value."""
    out = values.copy()
    for band in range(1, out.shape[-1]):
        gap = np.isnan(out[..., band])
        out[..., band][gap] = out[..., band - 1][gap]
    return out


def _carry_back(values: np.ndarray) -> np.ndarray:
    """Leading NaN bands (no book-outs yet to split) take the first band with a value."""
    return np.flip(_carry_forward(np.flip(values, -1)), -1)


def _moment(day: date) -> datetime:
    return datetime.combine(day, time.min)


def _arrest_settings(backend: ibis.BaseBackend) -> ibis.Table:
    links = source_table(backend, FOIA_ARREST_STAY_LINKS).select("arrest_record_id", "stay_id")
    arrests = source_table(backend, FOIA_ARRESTS)
    arrests = arrests.filter(~arrests.is_duplicate.fill_null(False)).select(
        arrest_record_id="record_id", arrest_setting="arrest_setting")
    linked = links.join(arrests, "arrest_record_id")
    # One setting per stay: a stay is linked to at most one arrest (foia_derived matches them
    # one to one).
    return linked.group_by("stay_id").aggregate(arrest_setting=linked.arrest_setting.min())


def _setting(value: ibis.StringValue) -> ibis.StringValue:
    linked = value.fill_null(NO_ICE_ARREST)
    return ibis.ifelse(linked.isin(list(ARREST_SETTINGS)) | (linked == NO_ICE_ARREST),
                       linked, "other")


def _stays(backend: ibis.BaseBackend, start: date) -> ibis.Table:
    """Stays booked in before `start`, observed up to 00:00 on `start` at the latest."""
    stays = cohort_stays(backend, MetricParams(end=start - timedelta(days=1)))
    stays = stays.left_join(_arrest_settings(backend), "stay_id")
    cutoff = ibis.literal(_moment(start))
    observed_to = ibis.least(ibis.coalesce(stays.stay_book_out, stays.censor_at), cutoff)
    ended = stays.stay_book_out.notnull() & (stays.stay_book_out <= cutoff)
    reason = stays.stay_release_reason
    outcome = ibis.cases(
        (reason_in(reason, "removed"), "removed"),
        (reason_in(reason, "voluntary_departure"), "voluntary_departure"),
        (reason_in(reason, "released"), "released"),
        else_="other",
    )
    has_crime_class = "msc_crime_class" in stays.columns
    violent = (stays.msc_crime_class.lower() == "violent").fill_null(False) if has_crime_class \
        else ibis.literal(False)
    days = (observed_to.epoch_seconds() - stays.stay_book_in.epoch_seconds()) / 86400.0
    midnights = ibis.greatest(days.round(), 0)
    return stays.select(
        criminality=stays.criminality.fill_null(UNKNOWN),
        setting=_setting(stays.arrest_setting),
        aor=stays.aor.fill_null(UNKNOWN),
        midnights=ibis.least(midnights, MAX_AGE + 1).cast("int64"),
        beyond=ibis.greatest(midnights - (MAX_AGE + 1), 0),
        ended=ended,
        outcome=outcome,
        violent=violent & (stays.criminality == CONVICTED),
        book_in=stays.stay_book_in,
        open_at_start=(stays.stay_book_out.isnull() & (stays.censor_at >= cutoff))
        | (stays.stay_book_out >= cutoff),
    )


def arrests_between(backend: ibis.BaseBackend, period: MetricParams, start: date) -> ibis.Table:
    """Non-duplicate ICE arrests in `period`, each with whether a stay booked in before `start`
    followed within 10 days (`followed`: the records show 10 days after it before `start`)."""
    arrests = source_table(backend, FOIA_ARRESTS)
    arrests = arrests.filter(~arrests.is_duplicate.fill_null(False)
                             & arrests.apprehension_date.notnull())
    arrests = during(owned(backend, arrests, "apprehension_date"), period, "apprehension_date")
    booked = source_table(backend, FOIA_ARREST_STAY_LINKS).select(
        "arrest_record_id", linked_stay="stay_id")
    stays = source_table(backend, FOIA_STAYS).select(
        linked_stay="stay_id", linked_book_in="stay_book_in")
    booked = booked.join(stays, "linked_stay").filter(
        lambda t: t.linked_book_in < _moment(start))
    booked = booked.group_by("arrest_record_id").aggregate(n=ibis._.count())
    joined = arrests.left_join(booked, arrests.record_id == booked.arrest_record_id)
    follow_to = ibis.least(joined.censor_at, ibis.literal(_moment(start)))
    return joined.select(
        day=joined.apprehension_date.date(),
        criminality=joined.criminality.fill_null(UNKNOWN),
        setting=_setting(joined.arrest_setting.fill_null("other")),
        aor=joined.aor.fill_null(UNKNOWN),
        followed=joined.apprehension_date + ibis.interval(days=BOOK_IN_DAYS) <= follow_to,
        booked=joined.n.notnull(),
    )


def data_end(backend: ibis.BaseBackend) -> date:
    releases = source_table(backend, FOIA_RELEASES)
    end = releases.coverage_end.max().execute()
    if end is None:
        raise NotMeasurable(f"{FOIA_RELEASES} lists no release coverage")
    return end.date() if isinstance(end, datetime) else end


def estimate(
    backend: ibis.BaseBackend,
    start: date | None = None,
    replicates: int = DEFAULT_REPLICATES,
    seed: int = 0,
) -> Estimates:
    """Fit every part of the model on the records before `start` (default: the last release's
    coverage end, whose 00:00 is the last moment the records know who is held)."""
    require_records(backend)
    end = data_end(backend)
    start = start or end
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    before = MetricParams(end=start - timedelta(days=1))
    partial, unknown = national_reach(backend, [
        NationalFigure(FOIA_ARRESTS, "the simulator's default target and funded beds"),
        NationalFigure(FOIA_STAYS, "the simulator's default target and funded beds")], before)
    part_of_country = tuple(where for places in partial.values() for where in places)
    notes += caveat_texts(unknown)

    stays = _stays(backend, start)
    stay_cells = stays.group_by(["criminality", "setting", "midnights", "ended", "outcome",
                                 "violent"]).aggregate(
        n=ibis._.count(), beyond=ibis._.beyond.sum()).to_pyarrow()
    arrests = arrests_between(backend, before, start).group_by(
        ["day", "criminality", "setting", "aor", "followed", "booked"]
    ).aggregate(n=ibis._.count()).to_pyarrow()
    held = stays.filter(stays.open_at_start).mutate(
        age=(ibis.literal(start) - stays.book_in.date()).cast("int64"))
    held_cells = held.group_by(["aor", "criminality", "setting", "age"]).aggregate(
        n=ibis._.count()).to_pyarrow()
    recent_start = start - timedelta(days=RECENT_DAYS)
    other = stays.filter((stays.setting == NO_ICE_ARREST)
                         & (stays.book_in >= _moment(recent_start)))
    other_cells = other.group_by(["aor", "criminality", "setting"]).aggregate(
        n=ibis._.count()).to_pyarrow()

    if stay_cells.num_rows == 0:
        raise NotMeasurable(f"no detention stays booked in before {start}")
    if arrests.num_rows == 0:
        raise NotMeasurable(f"no ICE arrests before {start}")
    classes = _classes(stay_cells, arrests)
    offices = tuple(sorted({*arrests.column("aor").to_pylist(),
                            *held_cells.column("aor").to_pylist(),
                            *other_cells.column("aor").to_pylist()}))
    class_at = {c: i for i, c in enumerate(classes)}
    office_at = {f: i for i, f in enumerate(offices)}
    n_classes = len(classes)

    # Stays: counts by class and length, ended by outcome or censored.
    ended = np.zeros((n_classes, len(OUTCOMES), MAX_AGE + 2))
    censored = np.zeros((n_classes, MAX_AGE + 2))
    # Person-days past the grid, per stay of the last length (ended by outcome, censored).
    beyond_ended = np.zeros((n_classes, len(OUTCOMES)))
    beyond_censored = np.zeros(n_classes)
    removed_by_violence = np.zeros((n_classes, 2))
    for row in stay_cells.to_pylist():
        c = class_at[(row["criminality"], row["setting"])]
        if row["ended"]:
            o = OUTCOMES.index(row["outcome"])
            ended[c, o, row["midnights"]] += row["n"]
            beyond_ended[c, o] += row["beyond"]
            if row["outcome"] == "removed":
                removed_by_violence[c, int(row["violent"])] += row["n"]
        else:
            censored[c, row["midnights"]] += row["n"]
            beyond_censored[c] += row["beyond"]
    drawn_ended = _poisson(rng, ended, replicates)
    drawn_censored = _poisson(rng, censored, replicates)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_stay_ended = np.nan_to_num(beyond_ended / ended[..., -1])
        per_stay_censored = np.nan_to_num(beyond_censored / censored[..., -1])
    beyond = (drawn_ended[..., -1] * per_stay_ended).sum(axis=-1) + \
        drawn_censored[..., -1] * per_stay_censored
    leave, outcome_share = life_table(drawn_ended, drawn_censored, beyond)
    leave, outcome_share = _fill_empty_classes(leave, outcome_share, classes, notes)

    removed = _poisson(rng, removed_by_violence, replicates)
    with np.errstate(invalid="ignore", divide="ignore"):
        violent_share = np.nan_to_num(removed[..., 1] / removed.sum(axis=-1))
    violent_measurable = "msc_crime_class" in source_table(backend, FOIA_STAYS).columns
    if not violent_measurable:
        notes.append(f"{FOIA_STAYS} has no msc_crime_class: removals of people with a violent "
                     "conviction are not measurable")

    # Arrests: booked in within 10 days, among arrests followed 10 days.
    followed = np.zeros((n_classes, 2))
    for row in arrests.to_pylist():
        if row["followed"]:
            followed[class_at[(row["criminality"], row["setting"])], int(row["booked"])] += row["n"]
    drawn = _poisson(rng, followed, replicates)
    with np.errstate(invalid="ignore", divide="ignore"):
        book_in = drawn[..., 1] / drawn.sum(axis=-1)
    no_arrest = ~np.array([s != NO_ICE_ARREST for _, s in classes])
    book_in[:, no_arrest] = np.nan
    unfollowed = np.isnan(book_in[0]) & ~no_arrest
    if unfollowed.any():
        book_in[:, unfollowed] = 0.0
        notes.append("no arrests followed 10 days in class(es) "
                     + ", ".join("/".join(classes[i]) for i in np.flatnonzero(unfollowed))
                     + ": their book-in probability is taken as 0")
    # A redraw with no followed arrest of a class says nothing of it: it keeps the observed share.
    book_in = np.where(np.isnan(book_in) & ~no_arrest, book_in[:1], book_in)

    weekly, recent = _arrest_series(arrests, class_at, office_at, start)
    held_at_start = np.zeros((len(offices), n_classes, MAX_AGE))
    for row in held_cells.to_pylist():
        held_at_start[office_at[row["aor"]], class_at[(row["criminality"], row["setting"])],
                      min(max(row["age"], 1), MAX_AGE - 1)] += row["n"]
    other_counts = np.zeros((len(offices), n_classes))
    for row in other_cells.to_pylist():
        other_counts[office_at[row["aor"]], class_at[(row["criminality"], row["setting"])]] += \
            row["n"]
    other_days = min(RECENT_DAYS, (start - _first_day(stays)).days) or 1
    no_arrest_book_ins = _poisson(rng, other_counts, replicates) / other_days

    counts = {
        "stays": int(ended.sum() + censored.sum()),
        "open_stays": int(censored.sum()),
        "arrests": int(sum(arrests.column("n").to_pylist())),
        "held_at_start": int(held_at_start.sum()),
        "weeks_of_arrests": int(weekly.shape[0]),
    }
    if end < start:
        notes.append(f"the records end on {end}; the simulation starts on {start}, and who is "
                     "held in between is not known (the starting population is incomplete)")
    return Estimates(
        classes=classes, offices=offices, start=start,
        leave=leave, outcome_share=outcome_share, book_in=book_in, violent_share=violent_share,
        no_arrest_book_ins=no_arrest_book_ins, held_at_start=held_at_start,
        weekly_arrests=weekly, recent_arrests=recent, counts=counts, notes=tuple(notes),
        violent_measurable=violent_measurable, part_of_country=part_of_country,
    )


def _first_day(stays: ibis.Table) -> date:
    first = stays.book_in.min().execute()
    return first.date() if isinstance(first, datetime) else first


def _classes(stay_cells: pa.Table, arrests: pa.Table) -> tuple[tuple[str, str], ...]:
    found = {(r["criminality"], r["setting"]) for r in stay_cells.to_pylist()}
    found |= {(r["criminality"], r["setting"]) for r in arrests.to_pylist()}
    order = {s: i for i, s in enumerate((*ARREST_SETTINGS, NO_ICE_ARREST))}
    return tuple(sorted(found, key=lambda c: (c[0], order.get(c[1], 99))))


def _fill_empty_classes(leave, outcome_share, classes, notes):
    """A class with no stays (arrests of a kind never booked in) takes the pooled curve of all
    stays of its criminality, else of all stays; it matters only if a strategy books it in.
    A bootstrap redraw with no stays of a class says nothing of it: that replicate keeps the
    class's curve from the records as they are (replicate 0), as the book-in shares do."""
    empty = np.isnan(leave[0, :, 0])
    # Stays none of which has ended yet give no outcomes either.
    no_outcomes = np.isnan(outcome_share[0]).reshape(len(classes), -1).any(axis=-1)
    for c in np.flatnonzero(empty | no_outcomes):
        same = [i for i, (crim, _) in enumerate(classes) if crim == classes[c][0]
                and not empty[i] and not no_outcomes[i]]
        donors = same or list(np.flatnonzero(~empty & ~no_outcomes))
        with warnings.catch_warnings():  # a donor's redraw may be empty too: it is skipped
            warnings.simplefilter("ignore", RuntimeWarning)
            if empty[c]:
                leave[:, c] = np.nanmean(leave[:, donors], axis=1)
            outcome_share[:, c] = np.nanmean(outcome_share[:, donors], axis=1)
        notes.append(f"no {'stays' if empty[c] else 'ended stays'} of class "
                     f"{'/'.join(classes[c])}: its {'length of stay and ' if empty[c] else ''}"
                     "outcomes are those of the other stays of its criminality")
    for values in (leave, outcome_share):
        redrawn = values[1:]
        lost = np.isnan(redrawn).reshape(*redrawn.shape[:2], -1).any(axis=-1)
        replicate, c = np.nonzero(lost)
        values[replicate + 1, c] = values[0, c]
    return leave, outcome_share


def _arrest_series(arrests: pa.Table, class_at, office_at, start: date):
    """(weekly counts (W, F, C) over whole weeks ending the day before start, daily rate over
    the last RECENT_DAYS (F, C))."""
    days = arrests.column("day").to_pylist()
    first = min(days)
    span = (start - first).days
    n_weeks = span // 7
    week_start = start - timedelta(days=7 * n_weeks)
    weekly = np.zeros((max(n_weeks, 0), len(office_at), len(class_at)))
    recent = np.zeros((len(office_at), len(class_at)))
    recent_from = start - timedelta(days=RECENT_DAYS)
    for row in arrests.to_pylist():
        f, c = office_at[row["aor"]], class_at[(row["criminality"], row["setting"])]
        if row["day"] >= week_start:
            weekly[(row["day"] - week_start).days // 7, f, c] += row["n"]
        if row["day"] >= recent_from:
            recent[f, c] += row["n"]
    return weekly, recent / min(RECENT_DAYS, span or 1)


def timeline_on(file_name: str, value_column: str, days: list[date]) -> tuple[np.ndarray, list]:
    """The dated facts value in force on each day (NaN where none) and the sources used."""
    timeline = load_timeline(file_name, value_column).to_pylist()
    values, sources = [], []
    for day in days:
        row = next((r for r in timeline if r["effective_from"] <= day <= r["effective_to"]), None)
        value = row[value_column] if row else None
        values.append(np.nan if value is None else value)
        if row and row["source"] not in sources:
            sources.append(row["source"])
    return np.array(values, dtype=float), sources
