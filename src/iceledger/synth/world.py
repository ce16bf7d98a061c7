"""The simulated world behind `iceledger synth`. SYNTHETIC: nothing here is a real ICE record.

People enter the world one calendar month at a time, from four doors: an ICE arrest (interior),
a Border Patrol apprehension booked into ICE detention (border), or only a detainer, an encounter
or a removal. An interior arrest may repeat within 24 hours (a second arrest row, or an `ERO
Reprocessed Arrest`) and usually leads to a detention stay booked in from 5 days before to 10
days after it; a stay is one to four stints with transfers (each stint's book-out is the next
one's book-in) and ends in a removal, a voluntary departure or a release, or is still open when
a release is cut. Every parameter comes from src/iceledger/data/synth/synth_model.toml, which names its
source; everything is vectorised with numpy so a month of millions of rows takes seconds.

A month is simulated from its own random stream, so months can be made in any order and the world
does not depend on which files are written. A release is a snapshot of the world: `Snapshot.as_of`
hides what had not happened by the release date (book-outs, departures, final orders).
"""

from __future__ import annotations

import csv
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from itertools import pairwise

import numpy as np

from iceledger.field_offices import field_offices
from iceledger.synth.columns import (
    EMPTY_CODE,
    Codes,
    Column,
    Labels,
    Moments,
    Numbers,
)

DAY = 86_400
NEVER = np.iinfo(np.int64).max  # the time of an event that does not happen

INTERIOR, BORDER, DETAINER_ONLY, ENCOUNTER_ONLY, REMOVAL_ONLY = range(5)
CONVICTED, PENDING, OTHER = range(3)


def day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def data_file(name: str):
    return resources.files("iceledger.data").joinpath("synth", name)


def _read_csv(name: str) -> list[dict[str, str]]:
    with data_file(name).open() as handle:
        return list(csv.DictReader(handle))


def _pairs(rows: list[list]) -> tuple[tuple[str, ...], np.ndarray]:
    return tuple(str(r[0]) for r in rows), np.array([float(r[1]) for r in rows])


def _shares(weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()


@dataclass(frozen=True)
class Series:
    """A time series given as knots [date, value, ...], linear between knots, flat outside."""

    days: np.ndarray
    values: np.ndarray  # one column per value

    @classmethod
    def from_knots(cls, knots: list[list]) -> Series:
        days = np.array([day_number(date.fromisoformat(str(k[0]))) for k in knots])
        return cls(days, np.array([[float(v) for v in k[1:]] for k in knots]))

    def at(self, days: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(days, self.days, self.values[:, j])
                         for j in range(self.values.shape[1])], axis=1)


@dataclass(frozen=True)
class Outcomes:
    reasons: tuple[str, ...]
    shares: np.ndarray
    median_days: np.ndarray
    sigma: np.ndarray

    @classmethod
    def from_rows(cls, rows: list[list]) -> Outcomes:
        return cls(tuple(r[0] for r in rows), _shares([r[1] for r in rows]),
                   np.array([float(r[2]) for r in rows]), np.array([float(r[3]) for r in rows]))


class Model:
    """Every parameter of the world, read once from the package's data files."""

    def __init__(self) -> None:
        with data_file("synth_model.toml").open("rb") as handle:
            self.p = tomllib.load(handle)
        p = self.p
        self.offices = field_offices()
        self.office_names = tuple(f"{o.name} Area of Responsibility" for o in self.offices)
        self.office_sites = tuple(f"{o.name} Field Office" for o in self.offices)
        codes = [o.code for o in self.offices]
        self.office_weights = {door: _shares([p["offices"][door][c] for c in codes])
                               for door in ("interior", "border")}
        self.hub_offices = np.array([codes.index(c) for c in p["offices"]["transfer_hubs"]])

        places = _read_csv("synth_places.csv")
        self.place_office = np.array([codes.index(r["aor_code"]) for r in places])
        self.place_weight = np.array([float(r["weight"]) for r in places])
        self.states = tuple(r["state"] for r in places)
        self.counties = tuple(r["county"] for r in places)
        self.cities = tuple(r["city"] for r in places)
        self.landmarks = tuple(f"{r['city']}, {r['state']} NON-SPECIFIC" for r in places)
        self.jail_names = tuple(f"SYNTHETIC {r['county']} COUNTY JAIL" for r in places)
        self.jail_codes = tuple(f"J{r['aor_code']}{i:03d}" for i, r in enumerate(places))
        # Detaining facilities, kind by kind (county jail, state prison, federal) for each place:
        # the name of kind k at place i is entry k * len(places) + i.
        self.detainer_facility_names = self.jail_names + tuple(
            f"SYNTHETIC {r['state']} STATE PRISON" for r in places
        ) + tuple(f"SYNTHETIC FEDERAL CORRECTIONAL INSTITUTION {r['city']}" for r in places)
        self.detainer_facility_codes = self.jail_codes + tuple(
            f"{kind}{r['aor_code']}{i:03d}" for kind in ("P", "F") for i, r in enumerate(places)
        )

        facilities = _read_csv("synth_facilities.csv")
        self.facility_codes = tuple(r["facility_code"] for r in facilities)
        self.facility_names = tuple(r["facility_name"] for r in facilities)
        self.facility_office = np.array([codes.index(r["aor_code"]) for r in facilities])
        self.facility_kind = np.array([r["kind"] for r in facilities])
        self.facility_beds = np.array([float(r["beds"]) for r in facilities])

        countries = _read_csv("synth_countries.csv")
        self.countries = tuple(r["country"] for r in countries)
        self.country_weights = {door: _shares([float(r[f"{door}_weight"]) for r in countries])
                                for door in ("interior", "border")}
        self.stay_length_factor = np.array([float(r["stay_length_factor"]) for r in countries])
        self.citizenship_labels = self.countries + (p["human_cost"]["us_citizenship_label"],)
        self.family_facilities = np.flatnonzero(self.facility_kind == "family")

        a = p["arrests"]
        self.arrests_per_day = Series.from_knots(a["per_day"])
        self.weekday_factors = _shares(a["weekday_factors"]) * 7
        self.at_large_share = Series.from_knots(a["at_large_share"])
        self.custodial_methods, self.custodial_method_shares = _pairs(a["custodial_methods"])
        self.at_large_methods, self.at_large_method_shares = _pairs(a["at_large_methods"])
        self.methods = self.custodial_methods + self.at_large_methods + (a["reprocessed_method"],)
        self.programs = tuple(r[0] for r in a["programs"])
        self.program_codes = tuple(r[1] for r in a["programs"])
        self.program_groups = tuple(r[2] for r in a["programs"])
        self.program_agencies = tuple(r[3] for r in a["programs"])
        by_method = dict(a["method_programs"])
        self.method_program = np.array([self.programs.index(by_method[m]) for m in self.methods])

        c = p["criminality"]
        self.criminality_labels = tuple(c["labels"])
        self.arrest_criminality = Series.from_knots(c["arrests"])
        d = p["detention"]
        self.border_per_day = Series.from_knots(d["border_per_day"])
        self.outcomes = {INTERIOR: Outcomes.from_rows(d["interior_outcomes"]),
                         BORDER: Outcomes.from_rows(d["border_outcomes"])}
        if self.outcomes[BORDER].reasons != self.outcomes[INTERIOR].reasons:
            raise ValueError("synth_model.toml: border_outcomes must list the reasons of "
                             "interior_outcomes, in the same order")
        self.reasons = self.outcomes[INTERIOR].reasons + (d["transfer_reason"],)
        self.genders, self.gender_shares = _pairs(p["people"]["genders"])
        r = p["removals"]
        self.released_statuses, self.released_status_shares = _pairs(r["released_statuses"])
        self.statuses = (r["open_status"], r["interior_status"], r["border_status"],
                         r["departed_status"]) + self.released_statuses
        ports_interior, self.port_shares_interior = _pairs(r["ports_interior"])
        ports_border, self.port_shares_border = _pairs(r["ports_border"])
        self.ports = ports_interior + ports_border
        charges = p["charges"]["list"]
        self.charges = tuple(ch[0] for ch in charges)
        self.charge_codes = tuple(ch[1] for ch in charges)
        self.charge_classes = tuple(ch[2] for ch in charges)
        self.charge_shares = _shares([ch[3] for ch in charges])
        self.charge_statuses = tuple(s[0] for s in p["charges"]["statuses"])
        self.charge_status_codes = tuple(s[1] for s in p["charges"]["statuses"])
        self.detainer_types, self.detainer_type_shares = _pairs(p["detainers"]["types"])
        lifts, self.other_lift_shares = _pairs(p["detainers"]["other_lift_reasons"])
        self.lift_reasons = (p["detainers"]["arrested_lift_reason"],) + lifts
        _kinds, self.detainer_facility_kind_shares = _pairs(p["detainers"]["facility_kinds"])
        # Indexed by a person's method code; the extra last slot is for EMPTY_CODE (no method).
        self.detainer_facility_kind_of_method = np.zeros(len(self.methods) + 1, dtype=np.int64)
        for kind, method in ((1, "state_prison_method"), (2, "federal_method")):
            self.detainer_facility_kind_of_method[self.methods.index(p["detainers"][method])] = kind
        e = p["encounters"]
        arrested, self.arrested_disposition_shares = _pairs(e["arrested_dispositions"])
        other, self.other_disposition_shares = _pairs(e["other_dispositions"])
        self.dispositions = arrested + other

    def arrest_weight(self, days: np.ndarray) -> np.ndarray:
        """Expected ICE arrests on each day at full scale (weekday pattern included)."""
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        return self.arrests_per_day.at(days)[:, 0] * self.weekday_factors[weekday]


@cache
def load_model() -> Model:
    return Model()


@dataclass(frozen=True)
class Plan:
    """How many of what happen on each day, fixed for a whole run before any month is simulated.

    `scale` arrest rows fall on the coverage days of the latest release in proportion to the
    arrests-per-day series; `per_arrest` converts full-scale daily rates to this run's scale, at
    which the days before hold arrests too: an earlier release's from `world_start` (default: the
    latest release's coverage start), and the warm-up before that.
    """

    seed: int
    first_day: int  # the first warm-up day
    coverage_first_day: int  # of the latest release
    end_day: int  # exclusive: the latest release date
    arrest_rows: np.ndarray  # per day, from first_day (warm-up arrests are never written)
    per_arrest: float

    @classmethod
    def make(cls, model: Model, seed: int, scale: int, coverage_start: date,
             end: date, world_start: date | None = None) -> Plan:
        coverage_first = day_number(coverage_start)
        first = day_number(world_start or coverage_start) - int(
            model.p["calendar"]["warm_up_days"])
        days = np.arange(first, day_number(end))
        weight = model.arrest_weight(days)
        covered = days >= coverage_first
        per_arrest = scale / weight[covered].sum()
        rng = np.random.default_rng([seed, 0])
        rows = np.zeros(len(days), dtype=np.int64)
        rows[covered] = rng.multinomial(scale, _shares(weight[covered]))
        rows[~covered] = rng.poisson(weight[~covered] * per_arrest)
        return cls(seed, first, coverage_first, day_number(end), rows, per_arrest)

    def months(self) -> list[tuple[int, int]]:
        """[first day, end day) of each calendar month the plan covers."""
        bounds = [self.first_day]
        day = np.datetime64(self.first_day, "D")
        while True:
            day = (day.astype("datetime64[M]") + 1).astype("datetime64[D]")
            if int(day.astype(np.int64)) >= self.end_day:
                break
            bounds.append(int(day.astype(np.int64)))
        bounds.append(self.end_day)
        return list(pairwise(bounds))


@dataclass(frozen=True)
class Snapshot:
    """What a release can see: events from `coverage_start` until just before `as_of` (seconds)."""

    coverage_start: int
    as_of: int
    identifier_salt: int


_QUANTILES = 1 << 16


@cache
def _quantile_table(shares: tuple[float, ...]) -> np.ndarray:
    cumulative = np.cumsum(shares) / sum(shares)
    middles = (np.arange(_QUANTILES) + 0.5) / _QUANTILES
    return np.searchsorted(cumulative, middles, side="right").clip(0, len(shares) - 1)


def choose(rng: np.random.Generator, shares: np.ndarray, n: int) -> np.ndarray:
    """n draws of a category index with the given shares (quantised to 1/65,536).

    A lookup table of quantiles is several times faster than searching the cumulative shares
    for every draw, and the generator makes hundreds of millions of draws at large scales.
    """
    table = _quantile_table(tuple(float(s) for s in shares))
    return table[rng.integers(0, _QUANTILES, n)]


def _choose_rows(rng: np.random.Generator, shares: np.ndarray) -> np.ndarray:
    """One category per row from per-row shares (an n x k matrix whose rows sum to 1)."""
    cumulative = np.cumsum(shares, axis=1)
    picks = (rng.random(len(shares))[:, None] * cumulative[:, -1:] >= cumulative).sum(axis=1)
    return picks.clip(0, shares.shape[1] - 1)


def _choose_within(rng: np.random.Generator, item_group: np.ndarray, weight: np.ndarray,
                   groups: np.ndarray) -> np.ndarray:
    """For each requested group, one item of that group, drawn in proportion to `weight`."""
    order = np.lexsort((np.arange(len(item_group)), item_group))
    group_sorted, weight_sorted = item_group[order], weight[order]
    totals = np.bincount(group_sorted, weights=weight_sorted)
    cumulative = np.cumsum(weight_sorted)
    before = np.concatenate([[0.0], np.cumsum(totals)])[group_sorted]
    keys = group_sorted + (cumulative - before) / totals[group_sorted]
    picks = np.searchsorted(keys, groups + rng.random(len(groups)) * 0.999999, side="right")
    return order[picks.clip(0, len(order) - 1)]


def _uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return low + (high - low) * rng.random(n)


def _minutes(seconds: np.ndarray) -> np.ndarray:
    """Whole minutes, as ICE's datetimes are; NEVER stays NEVER."""
    never = seconds >= NEVER
    minutes = (np.floor(np.where(never, 0, seconds) / 60) * 60).astype(np.int64)
    return np.where(never, NEVER, minutes)


def _identifiers(keys: np.ndarray, salt: int) -> np.ndarray:
    """16 hex digits per person, a bijective scramble of the person key keyed by the release.

    Releases anonymise identifiers separately, so the same person has a different identifier in
    each release, and the key (month, sequence) cannot be read back from it.
    """
    x = keys.astype(np.uint64) ^ np.uint64(salt)
    with np.errstate(over="ignore"):
        for shift, multiplier in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            x ^= x >> np.uint64(shift)
            x *= np.uint64(multiplier)
        x ^= x >> np.uint64(31)
    nibbles = (x[:, None] >> (np.uint64(4) * np.arange(15, -1, -1, dtype=np.uint64))) & np.uint64(15)
    hex_digits = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)[nibbles.astype(np.int64)]
    return np.ascontiguousarray(hex_digits).view("S16").ravel()


class Month:
    """Everything that starts in one calendar month: people and their records, as arrays."""

    def __init__(self, model: Model, plan: Plan, index: int, first_day: int, end_day: int):
        self.model = model
        self.index = index
        self.plan = plan
        self._person_columns: dict[tuple[str, Snapshot], Column] = {}
        rng = np.random.default_rng([plan.seed, 1, index])
        p = model.p
        days = np.arange(first_day, end_day)
        offset = first_day - plan.first_day
        rows_per_day = plan.arrest_rows[offset : offset + len(days)]
        arrest_weight = model.arrest_weight(days) * plan.per_arrest
        border_weight = model.border_per_day.at(days)[:, 0] * plan.per_arrest

        # Arrest rows: most open an episode for a new person; the rest repeat one within 24 h.
        row_day = np.repeat(days, rows_per_day)
        repeat_share = p["arrests"]["second_arrest_share"] + p["arrests"]["reprocessed_share"]
        repeats = rng.random(len(row_day)) < repeat_share
        if len(repeats) and repeats.all():
            repeats[0] = False
        interior_day = row_day[~repeats]

        def arrivals(rate: np.ndarray) -> np.ndarray:
            return np.repeat(days, rng.poisson(rate))

        detainer_day = arrivals(arrest_weight * p["detainers"]["without_arrest_per_arrest"])
        encounter_day = arrivals(arrest_weight * p["encounters"]["without_arrest_per_arrest"])
        border_day = arrivals(border_weight)
        removal_day = arrivals(border_weight * p["removals"]["without_stay_per_border_book_in"])
        doors = [(INTERIOR, interior_day), (BORDER, border_day), (DETAINER_ONLY, detainer_day),
                 (ENCOUNTER_ONLY, encounter_day), (REMOVAL_ONLY, removal_day)]
        self.door = np.concatenate([np.full(len(d), door, np.int8) for door, d in doors])
        self.first_seen = np.concatenate([d for _, d in doors]) * DAY
        self.n_people = len(self.door)
        self.key = (np.uint64(index) << np.uint64(32)) | np.arange(self.n_people, dtype=np.uint64)
        self._make_people(rng)
        self._make_arrests(rng, repeats)
        self._make_stays(rng)
        self._make_stints(rng)
        self._make_departures(rng)
        self._make_detainers_and_encounters(rng)
        self._make_human_cost()

    # People ---------------------------------------------------------------------------------

    def _make_people(self, rng: np.random.Generator) -> None:
        first_seen = self.first_seen
        m, p, n, door = self.model, self.model.p, self.n_people, self.door
        interior = door == INTERIOR
        border_like = (door == BORDER) | (door == REMOVAL_ONLY)
        self.office = np.where(border_like, choose(rng, m.office_weights["border"], n),
                               choose(rng, m.office_weights["interior"], n))
        self.place = _choose_within(rng, m.place_office, m.place_weight, self.office)
        self.country = np.where(border_like, choose(rng, m.country_weights["border"], n),
                                choose(rng, m.country_weights["interior"], n))
        self.gender = choose(rng, m.gender_shares, n)
        people = p["people"]
        # Capped at 80 so that every date stays in the range spreadsheets store (after 1927).
        age = people["age_offset"] + np.minimum(
            rng.gamma(people["age_shape"], people["age_scale"], n), 80 - people["age_offset"])
        year_seen = 1970 + first_seen / (DAY * 365.2425)
        self.birth_year = np.floor(year_seen - age).astype(np.int64)

        c = p["criminality"]
        shares = np.tile(_shares(c["others"]), (n, 1))
        shares[door == BORDER] = _shares(c["border"])
        shares[interior] = m.arrest_criminality.at(first_seen[interior] // DAY)
        self.criminality = _choose_rows(rng, shares / shares.sum(axis=1, keepdims=True))
        later = (self.criminality == PENDING) & (rng.random(n) < c["pending_later_convicted"])
        self.case_criminality = np.where(later, CONVICTED, self.criminality)
        convicted = self.case_criminality == CONVICTED
        threat = np.where(convicted, choose(rng, _shares(c["threat_levels_convicted"]), n),
                          choose(rng, _shares(c["threat_levels_other"]), n))
        self.threat_level = threat + 1  # levels 1..3; 4 = none

        ch = p["charges"]
        charged = self.case_criminality != OTHER
        self.charge = np.where(charged, choose(rng, m.charge_shares, n), EMPTY_CODE)
        charge_days = _uniform(rng, *ch["charge_days"], n)
        charge_time = first_seen - charge_days * DAY
        self.charge_time = _minutes(np.where(charged, charge_time, NEVER))
        conviction = charge_time + _uniform(rng, *ch["conviction_days"], n) * DAY
        self.conviction_time = _minutes(
            np.where(convicted, np.minimum(conviction, first_seen - DAY), NEVER))
        years_in_country = np.where(border_like, rng.random(n) * 2 / 365, rng.gamma(2.0, 4.0, n))
        entry = first_seen - years_in_country * 365.2425 * DAY
        birth = (self.birth_year - 1970) * 365.2425 * DAY
        self.entry_time = np.maximum(entry, birth + DAY).astype(np.int64)

    # Arrests --------------------------------------------------------------------------------

    def _make_arrests(self, rng: np.random.Generator, repeats: np.ndarray) -> None:
        m, a = self.model, self.model.p["arrests"]
        interior = np.flatnonzero(self.door == INTERIOR)
        n_int = len(interior)
        hours = np.clip(rng.normal(a["hour_mean"], a["hour_sd"], n_int), 0, 23.99)
        start = self.first_seen[interior]
        primary_time = _minutes(start + hours * 3600)
        crim = self.criminality[interior]
        at_large_share = m.at_large_share.at(start // DAY)[:, 0]
        odds = np.asarray(a["at_large_odds"], dtype=float)
        mix = m.arrest_criminality.at(start // DAY)
        p_at_large = np.clip(at_large_share * odds[crim] / (mix @ odds), 0, 1)
        at_large = rng.random(n_int) < p_at_large
        n_custodial = len(m.custodial_methods)
        method = np.where(at_large,
                          n_custodial + choose(rng, m.at_large_method_shares, n_int),
                          choose(rng, m.custodial_method_shares, n_int))
        self.person_method = np.full(self.n_people, EMPTY_CODE)
        self.person_method[interior] = method
        self.at_large = np.zeros(self.n_people, dtype=bool)
        self.at_large[interior] = at_large
        self.apprehension_time = np.full(self.n_people, NEVER)
        self.apprehension_time[interior] = primary_time

        # A repeat row copies its parent's person; it is a reprocessed arrest or a second arrest
        # later the same day or the next (both within 24 hours: one episode).
        n_repeat = int(repeats.sum())
        parent = rng.integers(0, max(n_int, 1), n_repeat)
        reprocessed_share = a["reprocessed_share"] / (a["reprocessed_share"]
                                                      + a["second_arrest_share"])
        reprocessed = rng.random(n_repeat) < reprocessed_share
        lag_hours = np.where(reprocessed, _uniform(rng, 0, 6, n_repeat),
                             _uniform(rng, 0.5, 23.5, n_repeat))
        repeat_method = np.where(
            reprocessed, len(m.methods) - 1,
            np.where(at_large[parent],
                     n_custodial + choose(rng, m.at_large_method_shares, n_repeat),
                     choose(rng, m.custodial_method_shares, n_repeat)))
        # A repeat stays on its parent's side of the coverage start and end, so that the arrests
        # file holds exactly `scale` rows.
        later = primary_time[parent] + lag_hours * 3600
        boundaries = np.array([self.plan.coverage_first_day, self.plan.end_day]) * DAY
        crosses = (np.searchsorted(boundaries, primary_time[parent], side="right")
                   != np.searchsorted(boundaries, later, side="right"))
        repeat_time = _minutes(np.where(crosses, primary_time[parent] - lag_hours * 3600, later))
        self.arrest_person = np.concatenate([interior, interior[parent]])
        self.arrest_time = np.concatenate([primary_time, repeat_time])
        self.arrest_method = np.concatenate([method, repeat_method])
        order = np.argsort(self.arrest_time, kind="stable")
        self.arrest_person = self.arrest_person[order]
        self.arrest_time = self.arrest_time[order]
        self.arrest_method = self.arrest_method[order]

    # Stays and stints -----------------------------------------------------------------------

    def _make_stays(self, rng: np.random.Generator) -> None:
        first_seen = self.first_seen
        m, d = self.model, self.model.p["detention"]
        n = self.n_people
        interior = self.door == INTERIOR
        detained_share = np.where(self.at_large, d["detained_share"][1], d["detained_share"][0])
        detained = (interior & (rng.random(n) < detained_share)) | (self.door == BORDER)
        bands = np.array(d["book_in_offsets"], dtype=float)
        band = choose(rng, bands[:, 0], n)
        offset_hours = bands[band, 1] + (bands[band, 2] - bands[band, 1]) * rng.random(n)
        border_start = first_seen + rng.random(n) * DAY
        book_in = np.where(interior, self.apprehension_time + offset_hours * 3600, border_start)
        self.stay_person = np.flatnonzero(detained)
        k = len(self.stay_person)
        self.stay_book_in = _minutes(book_in[detained])
        self.apprehension_time[self.door == BORDER] = _minutes(border_start[self.door == BORDER])

        outcome = np.empty(k, dtype=np.int64)
        median = np.empty(k)
        sigma = np.empty(k)
        stay_door = self.door[self.stay_person]
        for door, outcomes in m.outcomes.items():
            rows = np.flatnonzero(stay_door == door)
            outcome[rows] = choose(rng, outcomes.shares, len(rows))
            median[rows] = outcomes.median_days[outcome[rows]]
            sigma[rows] = outcomes.sigma[outcome[rows]]
        median *= m.stay_length_factor[self.country[self.stay_person]]
        length_days = np.maximum(np.exp(np.log(median) + sigma * rng.standard_normal(k)), 1 / 24)
        self.stay_outcome = outcome
        self.stay_book_out = _minutes(self.stay_book_in + length_days * DAY)

        bonded = outcome == m.reasons.index(d["bonded_reason"])
        low, high = d["bond_amounts"]
        self.bond_amount = (np.round(_uniform(rng, low, high, k) / 500) * 500).astype(np.int64)
        self.bond_set = _minutes(self.stay_book_in + rng.random(k) * 0.5
                                 * (self.stay_book_out - self.stay_book_in))
        self.bond_set = np.where(bonded, self.bond_set, NEVER)

    def _make_stints(self, rng: np.random.Generator) -> None:
        m, d = self.model, self.model.p["detention"]
        k = len(self.stay_person)
        length_days = (self.stay_book_out - self.stay_book_in) / DAY
        short = length_days < d["short_stay_days"]
        count = 1 + np.where(short, choose(rng, _shares(d["stints_short"]), k),
                             choose(rng, _shares(d["stints_long"]), k))
        stay = np.repeat(np.arange(k), count)
        first = np.concatenate([[0], np.cumsum(count)[:-1]])
        position = np.arange(len(stay)) - first[stay]
        n_stints = count[stay]

        # Boundaries: a first stint in a hold room when there are several, then cut points
        # drawn uniformly over the rest of the stay and sorted within the stay.
        book_in, book_out = self.stay_book_in[stay], self.stay_book_out[stay]
        hold = np.minimum(_uniform(rng, *d["hold_hours"], k) * 3600,
                          0.5 * (self.stay_book_out - self.stay_book_in))
        after_hold = np.where(count > 1, self.stay_book_in + hold, self.stay_book_in)[stay]
        cut = rng.random(len(stay))
        cut[position < 2] = -1.0  # positions 0 and 1 start at book-in and after the hold
        cut = cut[np.lexsort((cut, stay))]
        start = np.where(position == 0, book_in,
                         np.where(position == 1, after_hold,
                                  after_hold + cut * (book_out - after_hold)))
        start = _minutes(start)
        last = position == n_stints - 1
        end = np.append(start[1:], 0)  # a stint ends when the next one of its stay begins
        end[last] = self.stay_book_out[stay[last]]

        # Facilities: the hold room of the office, then its detention facilities or, for some
        # transfers, a large facility of a hub office; some removals leave via a staging facility.
        office = self.office[self.stay_person][stay]
        kind = m.facility_kind
        groups = {name: np.flatnonzero(kind == name) for name in ("hold", "detention", "staging")}
        facility = _choose_within(rng, m.facility_office[groups["detention"]],
                                  m.facility_beds[groups["detention"]], office)
        facility = groups["detention"][facility]
        hub_facilities = groups["detention"][np.isin(m.facility_office[groups["detention"]],
                                                     m.hub_offices)]
        away = (position > 0) & (rng.random(len(stay)) < d["transfer_away_share"])
        hub_pick = choose(rng, m.facility_beds[hub_facilities], int(away.sum()))
        facility[away] = hub_facilities[hub_pick]
        hold_of_office = np.empty(len(m.offices), dtype=np.int64)
        hold_of_office[m.facility_office[groups["hold"]]] = groups["hold"]
        in_hold = (position == 0) & (n_stints > 1)
        facility[in_hold] = hold_of_office[office[in_hold]]
        removed = self.stay_outcome[stay] == m.reasons.index(d["removed_reason"])
        staged = last & removed & (n_stints > 2) & (rng.random(len(stay)) < d["staging_share"])
        staging_office = m.facility_office[groups["staging"]]
        facility[staged] = groups["staging"][choose(rng, np.ones(len(staging_office)),
                                                     int(staged.sum()))]
        # A transfer goes to another facility: a repeat moves to the next detention facility.
        detention = groups["detention"]
        for _ in range(8):
            repeat = np.flatnonzero((facility[1:] == facility[:-1]) & (stay[1:] == stay[:-1])) + 1
            if not len(repeat):
                break
            at = np.searchsorted(detention, facility[repeat]) + 1
            facility[repeat] = detention[at % len(detention)]
        self.stint_stay = stay
        self.stint_book_in = start
        self.stint_book_out = end
        self.stint_is_last = last
        self.stint_facility = facility

    # Departures, detainers, encounters ------------------------------------------------------

    def _make_departures(self, rng: np.random.Generator) -> None:
        first_seen = self.first_seen
        m, p, n = self.model, self.model.p, self.n_people
        r = p["removals"]
        self.depart_time = np.full(n, NEVER)
        self.removed = np.zeros(n, dtype=bool)
        outcome_reason = np.array(m.reasons)[self.stay_outcome]
        departs = np.isin(outcome_reason, p["detention"]["departed_reasons"])
        people = self.stay_person
        self.depart_time[people[departs]] = self.stay_book_out[departs]
        self.removed[people[outcome_reason == p["detention"]["removed_reason"]]] = True
        removal_only = self.door == REMOVAL_ONLY
        self.depart_time[removal_only] = _minutes(first_seen[removal_only]
                                                  + rng.random(int(removal_only.sum())) * DAY)
        self.removed |= removal_only
        self.apprehension_time[removal_only] = _minutes(
            self.depart_time[removal_only] - _uniform(rng, 0.2, 3, int(removal_only.sum())) * DAY)

        third = rng.random(n) < p["people"]["third_country_share"]
        self.departure_country = np.where(third, m.countries.index(p["people"]["third_country"]),
                                          self.country)
        border_like = (self.door == BORDER) | removal_only
        self.port = np.where(border_like,
                             len(m.port_shares_interior) + choose(rng, m.port_shares_border, n),
                             choose(rng, m.port_shares_interior, n))

        # Case status: open until the stay ends; then removed, departed or a release decision.
        self.status_time = np.full(n, NEVER)
        self.status_time[people] = self.stay_book_out
        self.status_time[removal_only] = self.depart_time[removal_only]
        statuses = m.statuses
        first_released = len(statuses) - len(m.released_statuses)
        released = first_released + choose(rng, m.released_status_shares, n)
        self.status = np.where(self.removed,
                               np.where(border_like, statuses.index(r["border_status"]),
                                        statuses.index(r["interior_status"])),
                               np.where(self.depart_time != NEVER,
                                        statuses.index(r["departed_status"]), released))
        lead = _uniform(rng, *r["final_order_days"], n) * DAY
        order_time = np.where(self.depart_time != NEVER, self.depart_time - lead, NEVER)
        released_with_order = ((self.status_time != NEVER) & (self.depart_time == NEVER)
                               & (rng.random(n) < r["released_final_order_share"]))
        order_time = np.where(released_with_order, self.status_time, order_time)
        self.final_order_time = _minutes(order_time)

    def _make_detainers_and_encounters(self, rng: np.random.Generator) -> None:
        first_seen = self.first_seen
        m, p, n = self.model, self.model.p, self.n_people
        dt, en = p["detainers"], p["encounters"]
        office_hours = _uniform(rng, 7, 19, n) * 3600
        custodial = (self.door == INTERIOR) & ~self.at_large
        before_arrest = custodial & (rng.random(n) < dt["before_custodial_arrest_share"])
        lead = _uniform(rng, *dt["lead_days"], n).astype(np.int64) * DAY
        arrest_day = np.where(self.apprehension_time == NEVER, 0,
                              self.apprehension_time // DAY * DAY)
        prepare = np.where(before_arrest, arrest_day - lead, first_seen) + office_hours
        has_detainer = before_arrest | (self.door == DETAINER_ONLY)
        self.detainer_person = np.flatnonzero(has_detainer)
        self.detainer_time = _minutes(prepare[has_detainer])
        k = len(self.detainer_person)
        self.detainer_type = choose(rng, m.detainer_type_shares, k)
        self.detainer_arrested = before_arrest[has_detainer]
        self.detainer_other_lift = 1 + choose(rng, m.other_lift_shares, k)
        # From a stream of its own, so the records drawn after it are as they were without it.
        unarrested_kind = choose(self.random("detainer facility kinds"),
                                 m.detainer_facility_kind_shares, k)
        method = self.person_method[self.detainer_person]
        self.detainer_facility_kind = np.where(
            self.detainer_arrested, m.detainer_facility_kind_of_method[method], unarrested_kind)

        interior = self.door == INTERIOR
        encountered = interior | (self.door == ENCOUNTER_ONLY)
        lead = np.where(self.at_large, _uniform(rng, 0, 2, n) * 3600,
                        _uniform(rng, *en["custodial_lead_days"], n) * DAY)
        event = np.where(interior, self.apprehension_time - lead, first_seen + office_hours)
        self.encounter_person = np.flatnonzero(encountered)
        self.encounter_time = _minutes(event[encountered])
        k = len(self.encounter_person)
        n_arrested = len(m.arrested_disposition_shares)
        self.encounter_disposition = np.where(
            interior[encountered], choose(rng, m.arrested_disposition_shares, k),
            n_arrested + choose(rng, m.other_disposition_shares, k))

    # Human cost -----------------------------------------------------------------------------

    def _make_human_cost(self) -> None:
        """Recorded U.S. citizens, family units with children, re-arrests and conflicting birth
        years, each from a random stream of its own, so nothing drawn before changes."""
        m, h = self.model, self.model.p["human_cost"]
        us = self.random("recorded us citizenship").random(self.n_people)
        self.recorded_citizenship = np.where(us < h["recorded_us_citizen_share"],
                                             len(m.countries), self.country)
        self._make_family_units(self.random("family units"))
        self._make_rearrests(self.random("re-arrests"))
        off = self.random("conflicting birth years")
        conflicting = off.random(len(self.arrest_person)) < h["conflicting_birth_year_share"]
        self.arrest_birth_year = self.birth_year[self.arrest_person] + np.where(
            conflicting, np.where(off.random(len(self.arrest_person)) < 0.5, -1, 1), 0)

    def _make_family_units(self, rng: np.random.Generator) -> None:
        m, h = self.model, self.model.p["human_cost"]
        k = len(self.stay_person)
        family = (self.door[self.stay_person] == BORDER) & (rng.random(k) < h["family_unit_share"])
        members = self.stay_person[family]
        child = members[rng.random(len(members)) < h["family_child_share"]]
        age = _uniform(rng, *h["child_ages"], len(child))
        self.birth_year[child] = np.floor(1970 + self.first_seen[child] / (DAY * 365.2425)
                                          - age).astype(np.int64)
        # The first placement after the hold room (the only one of a one-stint stay): its
        # neighbours are a hold room or a detention facility, never the same family facility.
        stay = self.stint_stay
        count = np.bincount(stay, minlength=k)
        position = np.arange(len(stay)) - np.concatenate([[0], np.cumsum(count)[:-1]])[stay]
        placed = family[stay] & (position == (count[stay] > 1))
        pick = rng.integers(0, len(m.family_facilities), int(placed.sum()))
        self.stint_facility[placed] = m.family_facilities[pick]

    def _make_rearrests(self, rng: np.random.Generator) -> None:
        m, h = self.model, self.model.p["human_cost"]
        order = np.lexsort((self.arrest_time, self.arrest_person))
        person = self.arrest_person[order]
        second = np.zeros(len(order), dtype=bool)
        second[1:] = person[1:] == person[:-1]
        second &= self.arrest_method[order] != len(m.methods) - 1  # not reprocessed
        later = order[second & (rng.random(len(order)) < h["rearrest_share_of_second_arrests"])]
        lag = _uniform(rng, *h["rearrest_days"], len(later)) * DAY
        when = self.arrest_time[later]
        # Like a repeat within 24 hours, a re-arrest stays on its side of the coverage start and
        # end, so that the arrests file still holds exactly `scale` rows.
        boundaries = np.array([self.plan.coverage_first_day, self.plan.end_day]) * DAY
        crosses = (np.searchsorted(boundaries, when, side="right")
                   != np.searchsorted(boundaries, when + lag, side="right"))
        self.arrest_time[later] = _minutes(np.where(crosses, when - lag, when + lag))
        order = np.argsort(self.arrest_time, kind="stable")
        self.arrest_person = self.arrest_person[order]
        self.arrest_time = self.arrest_time[order]
        self.arrest_method = self.arrest_method[order]

    # Views ----------------------------------------------------------------------------------

    def random(self, purpose: str) -> np.random.Generator:
        """A random stream of this month for one purpose, the same whichever files are written."""
        return np.random.default_rng([self.plan.seed, 2, self.index,
                                      zlib.crc32(purpose.encode())])

    def person_column(self, field: str, snapshot: Snapshot) -> Column:
        key = (field, snapshot)
        if key not in self._person_columns:
            self._person_columns[key] = _PERSON_FIELDS[field](self, snapshot)
        return self._person_columns[key]

    def view(self, dataset: str, snapshot: Snapshot) -> DatasetView:
        """The rows of one dataset that a release sees, with every field the layouts name."""
        start, end = snapshot.coverage_start, snapshot.as_of
        if dataset == "arrests":
            person, when = self.arrest_person, self.arrest_time
            visible = (when >= start) & (when < end)
        elif dataset == "stints":
            person, when = self.stay_person[self.stint_stay], self.stint_book_in
            visible = (self.stint_book_in < end) & (self.stint_book_out >= start)
        elif dataset == "removals":
            person = np.flatnonzero(self.removed)
            when = self.depart_time[person]
            visible = (when >= start) & (when < end)
        elif dataset == "detainers":
            person, when = self.detainer_person, self.detainer_time
            visible = (when >= start) & (when < end)
        elif dataset == "encounters":
            person, when = self.encounter_person, self.encounter_time
            visible = (when >= start) & (when < end)
        else:
            raise ValueError(f"unknown dataset {dataset!r}")
        rows = np.flatnonzero(visible)
        rows = rows[np.argsort(when[rows], kind="stable")]  # files read in time order
        return DatasetView(self, dataset, snapshot, rows, person)


def _moments(seconds: np.ndarray, as_of: int, date_only: bool = False) -> Moments:
    """Times that had happened by `as_of`; later ones (and NEVER) are empty cells."""
    return Moments(seconds, seconds >= as_of, date_only)


def _labels_if(codes: np.ndarray, shown: np.ndarray, labels: tuple[str, ...]) -> Labels:
    return Labels(np.where(shown, codes, EMPTY_CODE), labels)


class DatasetView:
    """One dataset of one month as a release sees it: `column(field)` for each layout field."""

    def __init__(self, month: Month, dataset: str, snapshot: Snapshot, rows: np.ndarray,
                 row_person: np.ndarray):
        self.month = month
        self.dataset = dataset
        self.snapshot = snapshot
        self.rows = rows
        self.all_rows = len(row_person)
        self.person = row_person[rows]

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, field: str) -> Column:
        own = _ROW_FIELDS.get(self.dataset, {}).get(field)
        if own is not None:
            return own(self.month, self.rows, self.snapshot.as_of)
        if field == "person_id":
            share = self.month.model.p["people"]["missing_identifier_share"]
            missing = self.month.random(f"missing identifier:{self.dataset}")
            return Codes(_identifiers(self.month.key[self.person], self.snapshot.identifier_salt),
                         (missing.random(self.all_rows) < share)[self.rows])
        return self.month.person_column(field, self.snapshot).take(self.person)


def _program(w: Month) -> np.ndarray:
    m, a = w.model, w.model.p["arrests"]
    other = np.where(w.door == BORDER, m.programs.index(a["border_program"]),
                     m.programs.index(a["other_program"]))
    method = np.maximum(w.person_method, 0)
    return np.where(w.person_method >= 0, m.method_program[method], other)


def _case_status(w: Month, as_of: int) -> Labels:
    return Labels(np.where(w.status_time < as_of, w.status, 0), w.model.statuses)


def _departed(w: Month, as_of: int) -> np.ndarray:
    return w.depart_time < as_of


def _charge_status(w: Month) -> np.ndarray:
    charged = w.case_criminality != OTHER
    return np.where(charged, np.where(w.case_criminality == CONVICTED, 0, 1), EMPTY_CODE)


PersonField = Callable[[Month, Snapshot], Column]

_PERSON_FIELDS: dict[str, PersonField] = {
    "gender": lambda w, s: Labels(w.gender, w.model.genders),
    "citizenship": lambda w, s: Labels(w.recorded_citizenship, w.model.citizenship_labels),
    "birth_year": lambda w, s: Numbers(w.birth_year),
    "criminality": lambda w, s: Labels(w.criminality, w.model.criminality_labels),
    "case_criminality": lambda w, s: Labels(w.case_criminality, w.model.criminality_labels),
    "threat_level": lambda w, s: Numbers(w.threat_level, w.threat_level > 3),
    "entry_date": lambda w, s: Moments(w.entry_time, None, True),
    "msc_charge": lambda w, s: Labels(w.charge, w.model.charges),
    "msc_charge_code": lambda w, s: Labels(w.charge, w.model.charge_codes),
    "msc_crime_class": lambda w, s: Labels(w.charge, w.model.charge_classes),
    "msc_charge_date": lambda w, s: _moments(w.charge_time, s.as_of, True),
    "msc_conviction_date": lambda w, s: _moments(w.conviction_time, s.as_of, True),
    "msc_charge_status": lambda w, s: Labels(_charge_status(w), w.model.charge_statuses),
    "msc_charge_status_code": lambda w, s: Labels(_charge_status(w), w.model.charge_status_codes),
    "aor_name": lambda w, s: Labels(w.office, w.model.office_names),
    "duty_site": lambda w, s: Labels(w.office, w.model.office_sites),
    "state": lambda w, s: Labels(w.place, w.model.states),
    "county": lambda w, s: Labels(w.place, w.model.counties),
    "city": lambda w, s: Labels(w.place, w.model.cities),
    "landmark": lambda w, s: Labels(w.place, w.model.landmarks),
    "final_program": lambda w, s: Labels(_program(w), w.model.programs),
    "final_program_code": lambda w, s: Labels(_program(w), w.model.program_codes),
    "final_program_group": lambda w, s: Labels(_program(w), w.model.program_groups),
    "arresting_agency": lambda w, s: Labels(_program(w), w.model.program_agencies),
    "latest_apprehension_time": lambda w, s: _moments(w.apprehension_time, s.as_of),
    "person_apprehension_time": lambda w, s: _moments(
        np.where(w.door == INTERIOR, w.apprehension_time, NEVER), s.as_of),
    "person_method": lambda w, s: _labels_if(w.person_method, w.apprehension_time < s.as_of,
                                             w.model.methods),
    "case_status": lambda w, s: _case_status(w, s.as_of),
    "departed_date": lambda w, s: _moments(w.depart_time, s.as_of, True),
    "departure_country": lambda w, s: _labels_if(w.departure_country, _departed(w, s.as_of),
                                                 w.model.countries),
    "port_of_departure": lambda w, s: _labels_if(w.port, _departed(w, s.as_of) & w.removed,
                                                 w.model.ports),
    "final_order": lambda w, s: Labels(np.where(w.final_order_time < s.as_of, 0, 1),
                                       ("YES", "NO")),
    "final_order_date": lambda w, s: _moments(w.final_order_time, s.as_of, True),
}

RowField = Callable[[Month, np.ndarray, int], Column]


def _stint_stay(w: Month, rows: np.ndarray) -> np.ndarray:
    return w.stint_stay[rows]


def _stay_closed(w: Month, rows: np.ndarray, as_of: int) -> np.ndarray:
    return w.stay_book_out[_stint_stay(w, rows)] < as_of


def _stint_reason(w: Month, rows: np.ndarray, as_of: int) -> Labels:
    transfer = len(w.model.reasons) - 1
    reason = np.where(w.stint_is_last[rows], w.stay_outcome[_stint_stay(w, rows)], transfer)
    return _labels_if(reason, w.stint_book_out[rows] < as_of, w.model.reasons)


def _bond_posted(w: Month, rows: np.ndarray, as_of: int) -> np.ndarray:
    stay = _stint_stay(w, rows)
    return (w.bond_set[stay] != NEVER) & (w.stay_book_out[stay] < as_of)


def _detainer_facility(w: Month, rows: np.ndarray) -> np.ndarray:
    place = w.place[w.detainer_person[rows]]
    return w.detainer_facility_kind[rows] * len(w.model.jail_names) + place


def _lift_reason(w: Month, rows: np.ndarray, as_of: int) -> Labels:
    arrested = w.detainer_arrested[rows]
    taken = w.apprehension_time[w.detainer_person[rows]] < as_of
    code = np.where(arrested, np.where(taken, 0, EMPTY_CODE), w.detainer_other_lift[rows])
    return Labels(code, w.model.lift_reasons)


_ROW_FIELDS: dict[str, dict[str, RowField]] = {
    "arrests": {
        "apprehension_time": lambda w, r, t: Moments(w.arrest_time[r]),
        "method": lambda w, r, t: Labels(w.arrest_method[r], w.model.methods),
        "birth_year": lambda w, r, t: Numbers(w.arrest_birth_year[r]),
    },
    "stints": {
        "stay_book_in": lambda w, r, t: Moments(w.stay_book_in[_stint_stay(w, r)]),
        "book_in": lambda w, r, t: Moments(w.stint_book_in[r]),
        "book_out": lambda w, r, t: _moments(w.stint_book_out[r], t),
        "stay_book_out": lambda w, r, t: _moments(w.stay_book_out[_stint_stay(w, r)], t),
        "stay_book_out_date": lambda w, r, t: _moments(w.stay_book_out[_stint_stay(w, r)], t,
                                                       True),
        "stint_release_reason": _stint_reason,
        "stay_release_reason": lambda w, r, t: _labels_if(
            w.stay_outcome[_stint_stay(w, r)], _stay_closed(w, r, t), w.model.reasons),
        "facility_name": lambda w, r, t: Labels(w.stint_facility[r], w.model.facility_names),
        "facility_code": lambda w, r, t: Labels(w.stint_facility[r], w.model.facility_codes),
        "book_in_aor": lambda w, r, t: Labels(w.model.facility_office[w.stint_facility[r]],
                                              w.model.office_names),
        "book_in_site": lambda w, r, t: Labels(w.model.facility_office[w.stint_facility[r]],
                                               w.model.office_sites),
        "bond_posted_date": lambda w, r, t: Moments(
            w.stay_book_out[_stint_stay(w, r)], ~_bond_posted(w, r, t), True),
        "bond_posted_amount": lambda w, r, t: Numbers(
            w.bond_amount[_stint_stay(w, r)], ~_bond_posted(w, r, t)),
        "initial_bond_amount": lambda w, r, t: Numbers(
            w.bond_amount[_stint_stay(w, r)], w.bond_set[_stint_stay(w, r)] >= t),
        "initial_bond_date": lambda w, r, t: _moments(w.bond_set[_stint_stay(w, r)], t, True),
    },
    "detainers": {
        "prepare_time": lambda w, r, t: Moments(w.detainer_time[r]),
        "detainer_type": lambda w, r, t: Labels(w.detainer_type[r], w.model.detainer_types),
        "lift_reason": _lift_reason,
        "detainer_facility_name": lambda w, r, t: Labels(_detainer_facility(w, r),
                                                         w.model.detainer_facility_names),
        "detainer_facility_code": lambda w, r, t: Labels(_detainer_facility(w, r),
                                                         w.model.detainer_facility_codes),
    },
    "encounters": {
        "event_time": lambda w, r, t: Moments(w.encounter_time[r]),
        "disposition": lambda w, r, t: Labels(w.encounter_disposition[r], w.model.dispositions),
    },
}

DATASETS = ("arrests", "stints", "removals", "detainers", "encounters")


def field_names(dataset: str) -> set[str]:
    """Every field a layout of `dataset` may name."""
    return set(_ROW_FIELDS.get(dataset, {})) | set(_PERSON_FIELDS) | {"person_id"}
