"""Enforcement strategies as scenarios: observed, volume, targeted and user-defined (TOML).

- observed: ICE arrests at their rate and mix over the last 13 weeks of the records.
- volume: a daily arrest target met with the mix observed as volume rose: the arrests of the
  busiest third of weeks less those of the quietest third, per class and office, per day
  (classes that fell as volume rose count as zero). Arrests up to today's level keep today's
  mix; those above it take the marginal mix. Resampled by weeks, so the mix has an interval.
- targeted: arrests of people with convictions only, custodial first (up to the most convicted
  custodial arrests per day the records show in a week), then at large, as many as fill the
  same beds a reference strategy fills in its steady state (the same budget, bed-days being
  priced at one rate), or the funded beds.
- user-defined: a small TOML file (see USER_TEMPLATE) with a daily arrest rate, a mix and a
  policy (release on bond, book-in probability, book-ins not from ICE arrests).

Book-ins not from an ICE arrest keep their observed rate in every strategy unless a user file
changes it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np

from iceledger.errors import IceledgerError
from iceledger.facts import Target, load_targets
from iceledger.metrics.targeting import CONVICTED
from iceledger.simulate.estimate import (
    OUTCOMES,
    RECENT_DAYS,
    Estimates,
    NotMeasurable,
    timeline_on,
)
from iceledger.simulate.solve import Scenario, steady_state

STRATEGIES = ("observed", "volume", "targeted")
VOLUME_TERCILE = 1 / 3
RELEASED = OUTCOMES.index("released")
DEFAULT_BOND_DAY = 7

USER_TEMPLATE = """\
name = "bond"                      # shown in every output
description = "1,500 arrests a day, a third of non-convicted book-ins released on bond"
arrests_per_day = 1500             # ICE arrests per day
days = 365                         # optional; else --days

[mix]                              # shares of arrests, "criminality/setting"; normalised
"Convicted Criminal/custodial" = 0.5
"Convicted Criminal/at-large" = 0.2
"Other Immigration Violator/at-large" = 0.3

[policy]                           # all optional
release_on_bond_share = 0.33       # share of book-ins without a conviction released on bond
bond_after_days = 7                # ... after this many midnights (unless they left before)
book_in_probability = 0.9          # P(book-in | arrest) for every class; else estimated
no_arrest_book_ins = 1.0           # book-ins not from an ICE arrest, x the observed rate
"""


def _constant(e: Estimates, per_day: np.ndarray, days: int) -> dict:
    """Scenario arrays for arrests per day by (F, C), or (R, F, C), held for `days`."""
    by_class = per_day.sum(axis=-2)
    return {
        "days": days,
        "arrests_by_class": np.repeat(by_class[..., None, :], days, axis=-2),
        "arrests_by_office": per_day * days,
        "estimates": e,
    }


def office_shares(e: Estimates) -> np.ndarray:
    """(F, C): how each class's arrests split across field offices in the records; a class
    with none is split like all arrests."""
    by_office = e.weekly_arrests.sum(axis=0)
    overall = by_office.sum(axis=1, keepdims=True)
    pooled = overall / overall.sum() if overall.sum() > 0 else np.full_like(
        overall, 1 / len(e.offices))
    totals = by_office.sum(axis=0)
    return np.where(totals > 0, by_office / np.where(totals > 0, totals, 1.0), pooled)


def observed(e: Estimates, days: int, beds: float | None = None) -> Scenario:
    total = e.recent_arrests.sum()
    return Scenario(
        name="observed",
        description=f"ICE arrests as in the last {RECENT_DAYS} days of the records "
                    f"({total:,.1f} a day), with their mix",
        assumptions=(f"Arrests continue at the rate and mix of the {RECENT_DAYS} days before "
                     f"{e.start}.",),
        beds=beds,
        **_constant(e, e.recent_arrests, days),
    )


def marginal_mix(e: Estimates) -> tuple[np.ndarray, dict[str, float]]:
    """(R, F, C) shares of the arrests added as volume rose, and the two volume levels."""
    weekly = e.weekly_arrests
    totals = weekly.sum(axis=(1, 2))
    if len(totals) < 6:
        raise NotMeasurable(f"the records hold {len(totals)} whole weeks of arrests before "
                            f"{e.start}; the mix as volume rose needs at least 6")
    low_cut, high_cut = np.quantile(totals, [VOLUME_TERCILE, 1 - VOLUME_TERCILE])
    low, high = np.flatnonzero(totals <= low_cut), np.flatnonzero(totals >= high_cut)
    rng = np.random.default_rng(7)
    draws = e.replicates - 1
    means = []
    for weeks in (low, high):
        chosen = rng.choice(weeks, size=(draws, len(weeks)), replace=True)
        resampled = weekly[chosen].mean(axis=1) / 7
        means.append(np.concatenate([weekly[weeks].mean(axis=0)[None] / 7, resampled]))
    added = np.clip(means[1] - means[0], 0.0, None)
    total_added = added.sum(axis=(1, 2), keepdims=True)
    levels = {"low": float(means[0][0].sum()), "high": float(means[1][0].sum())}
    if levels["high"] <= levels["low"] or (total_added[0] <= 0).any():
        raise NotMeasurable("ICE arrests did not rise across the weeks of the records, so no "
                            "mix of the added arrests can be observed")
    total_added = np.where(total_added > 0, total_added, 1.0)
    return added / total_added, levels


def volume(e: Estimates, days: int, target: float, beds: float | None = None) -> Scenario:
    if target <= 0:
        raise IceledgerError(f"--target {target}: give a positive number of arrests per day")
    mix, levels = marginal_mix(e)
    now = e.recent_arrests
    level = now.sum()
    if target >= level:
        per_day = now[None] + (target - level) * mix
        how = (f"{level:,.1f} arrests a day with today's mix plus {target - level:,.1f} with the "
               "mix observed as volume rose")
    else:
        per_day = np.broadcast_to(now * (target / level), mix.shape)
        how = f"today's mix scaled down from {level:,.1f} to {target:,.1f} arrests a day"
    convicted_share = mix[0][:, e.convicted].sum()
    return Scenario(
        name="volume",
        description=f"{target:,.0f} ICE arrests a day: {how}",
        assumptions=(
            f"Marginal mix: arrests per day of the busiest third of weeks ({levels['high']:,.1f} "
            f"a day) less those of the quietest third ({levels['low']:,.1f} a day), by class and "
            f"field office; {convicted_share:.0%} of the added arrests are of people with "
            "convictions. Classes that fell as volume rose count as zero.",
            "Each added arrest is booked in, held and released like past arrests of its class; "
            "the records cannot say whether a quota changes that.",
        ),
        beds=beds,
        **_constant(e, per_day, days),
    )


def targeted(e: Estimates, days: int, beds_to_fill: float, basis: str,
             beds: float | None = None) -> Scenario:
    """Arrests of people with convictions, custodial first, filling `beds_to_fill` beds."""
    custodial = e.class_index(CONVICTED, "custodial")
    at_large = e.class_index(CONVICTED, "at-large")
    if not custodial or not at_large:
        raise NotMeasurable("the records have no arrests of people with convictions in custody "
                            "and at large, which the targeted strategy draws on")
    c_cust, c_large = custodial[0], at_large[0]
    weekly = e.weekly_arrests
    pool = weekly[:, :, c_cust].sum(axis=1).max() / 7
    office_share = office_shares(e)
    stay, _ = e.stay_summary
    rates = np.nan_to_num(e.book_in[0])
    beds_per_arrest = rates * stay[0]
    held_otherwise = (e.no_arrest_book_ins[0].sum(axis=0) * stay[0]).sum()
    room = beds_to_fill - held_otherwise
    if room <= 0:
        raise IceledgerError(f"book-ins not from ICE arrests alone fill {held_otherwise:,.0f} "
                             f"beds, more than the {beds_to_fill:,.0f} to fill")
    from_custody = min(pool, room / beds_per_arrest[c_cust])
    at_large_n = max(room - from_custody * beds_per_arrest[c_cust], 0) / beds_per_arrest[c_large]
    per_day = np.zeros_like(e.recent_arrests)
    per_day[:, c_cust] = from_custody * office_share[:, c_cust]
    per_day[:, c_large] = at_large_n * office_share[:, c_large]
    total = from_custody + at_large_n
    return Scenario(
        name="targeted",
        description=(f"{total:,.0f} ICE arrests a day, all of people with convictions: "
                     f"{from_custody:,.0f} from jails and prisons, {at_large_n:,.0f} at large, "
                     f"filling {beds_to_fill:,.0f} beds ({basis})"),
        assumptions=(
            f"Custodial arrests of people with convictions are capped at {pool:,.1f} a day, the "
            "most the records show in a week; the rest are at large.",
            "Arrests are split across field offices as past arrests of their class were.",
            "The arrest count is chosen on the point estimates; its outcomes carry the "
            "parameters' uncertainty.",
        ),
        beds=beds,
        **_constant(e, per_day, days),
    )


def same_budget_as(reference: Scenario, days: int, beds: float | None = None) -> Scenario:
    held = float(steady_state(reference).values["population"][0])
    return targeted(reference.estimates, days, held,
                    f"the steady-state beds, and so the budget, of the {reference.name} strategy",
                    beds=beds)


def with_bond(e: Estimates, share: float, after: int) -> tuple[np.ndarray, np.ndarray]:
    """Curves where `share` of the people without a conviction still held after `after`
    midnights leave then, released on bond."""
    leave, shares = e.leave.copy(), e.outcome_share.copy()
    for c in np.flatnonzero(~e.convicted):
        h = leave[:, c, after]
        new_h = h + (1 - h) * share
        kept = np.divide(h, new_h, out=np.zeros_like(h), where=new_h > 0)
        released = shares[:, c, RELEASED, after] * h + (1 - h) * share
        shares[:, c, :, after] *= kept[:, None]
        shares[:, c, RELEASED, after] = np.divide(released, new_h, out=np.zeros_like(h),
                                                  where=new_h > 0)
        leave[:, c, after] = new_h
    return leave, shares


def user_defined(e: Estimates, path: Path, days: int, beds: float | None = None) -> Scenario:
    try:
        spec = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise IceledgerError(f"{path}: cannot read the strategy file: {exc}") from None

    def fail(problem: str) -> IceledgerError:
        return IceledgerError(f"{path}: {problem}")

    allowed = {"name", "description", "arrests_per_day", "days", "mix", "policy"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    rate = spec.get("arrests_per_day")
    if not isinstance(rate, (int, float)) or rate < 0:
        raise fail("arrests_per_day: give a number of arrests per day (0 or more)")
    days = int(spec.get("days", days))
    names = {f"{crim}/{setting}": i for i, (crim, setting) in enumerate(e.classes)
             if e.arrest_classes[i]}
    mix = np.zeros(len(e.classes))
    for key, share in (spec.get("mix") or {}).items():
        if key not in names:
            raise fail(f"[mix] {key!r} is not a class of these records (classes: "
                       f"{', '.join(names)})")
        if not isinstance(share, (int, float)) or share < 0:
            raise fail(f"[mix] {key!r}: give a share (0 or more)")
        mix[names[key]] = share
    if mix.sum() <= 0:
        mix = e.recent_arrests.sum(axis=0)
        mix_note = f"mix: today's (the last {RECENT_DAYS} days of the records)"
    else:
        mix_note = "mix: as given in the file"
    mix = mix / mix.sum()
    per_day = rate * mix[None] * office_shares(e)

    policy = spec.get("policy") or {}
    known_policy = {"release_on_bond_share", "bond_after_days", "book_in_probability",
                    "no_arrest_book_ins"}
    unknown = sorted(set(policy) - known_policy)
    if unknown:
        raise fail(f"[policy] unknown key(s) {', '.join(unknown)} "
                   f"(allowed: {', '.join(sorted(known_policy))})")
    notes = [mix_note]
    fields: dict = {}
    bond = policy.get("release_on_bond_share")
    if bond is not None:
        after = int(policy.get("bond_after_days", DEFAULT_BOND_DAY))
        if not 0 <= bond <= 1 or not 0 <= after < e.leave.shape[-1]:
            raise fail("[policy] release_on_bond_share is a share (0 to 1) and bond_after_days "
                       "a number of midnights")
        fields["leave"], fields["outcome_share"] = with_bond(e, bond, after)
        notes.append(f"{bond:.0%} of the people without a conviction still held after {after} "
                     "midnights are released on bond then")
    probability = policy.get("book_in_probability")
    if probability is not None:
        if not 0 <= probability <= 1:
            raise fail("[policy] book_in_probability is a probability (0 to 1)")
        fields["book_in"] = np.where(np.isnan(e.book_in), np.nan, probability)
        notes.append(f"every ICE arrest is booked in with probability {probability}")
    scale = policy.get("no_arrest_book_ins", 1.0)
    if not isinstance(scale, (int, float)) or scale < 0:
        raise fail("[policy] no_arrest_book_ins is a multiple of the observed rate (0 or more)")
    notes.append(f"book-ins not from an ICE arrest: {scale:g} x the observed rate")
    return Scenario(
        name=str(spec.get("name", path.stem)),
        description=str(spec.get("description", f"user-defined strategy from {path.name}")),
        assumptions=tuple(notes),
        no_arrest_scale=float(scale),
        beds=beds,
        **_constant(e, per_day, days),
        **fields,
    )


FILL_CHOICES = ("same-budget", "funded-beds")


def scenarios(e: Estimates, names: list[str], days: int, target: float | None = None,
              fill: str = "same-budget", beds: float | None = None) -> list[Scenario]:
    """The named strategies (or TOML files) in order; the volume strategy makes `target`
    arrests a day (by default the latest national target, `national_target`), and the
    targeted strategy fills the volume strategy's beds (same budget) or the funded beds."""
    if fill not in FILL_CHOICES:
        raise IceledgerError(f"--fill {fill!r}: use {' or '.join(FILL_CHOICES)}")
    built: list[Scenario] = []
    for name in names:
        if name == "observed":
            built.append(observed(e, days, beds))
        elif name == "volume":
            built.append(volume(e, days, _target(e, target), beds))
        elif name == "targeted":
            if fill == "funded-beds":
                funded = beds if beds is not None else _funded_beds(e)
                built.append(targeted(e, days, funded, f"the funded beds, {funded:,.0f}", beds))
            else:
                built.append(same_budget_as(volume(e, days, _target(e, target), beds), days,
                                            beds))
        elif name.endswith(".toml"):
            built.append(user_defined(e, Path(name), days, beds))
        else:
            raise IceledgerError(f"--strategy {name!r}: use {', '.join(STRATEGIES)} or a "
                                 ".toml file")
    return built


def national_default(e: Estimates, what: str, option: str) -> None:
    """Refuse a national default (`what`) for records of part of the country, saying which
    option gives a figure for that part."""
    if e.part_of_country:
        raise NotMeasurable(f"{what} is national, and {'; '.join(e.part_of_country)}: give "
                            f"{option} for that part of the country")


def national_target() -> Target:
    """The volume strategy's daily arrests unless told otherwise: the primary national target
    of targets.csv that started last (the facts folder a user gives may replace it)."""
    national = [t for t in load_targets() if t.scope == "national" and t.status == "primary"]
    if not national:
        raise IceledgerError("targets.csv has no primary national target to default to; give "
                             "the volume strategy's arrests a day with --target N")
    return max(national, key=lambda t: t.effective_from)


def _target(e: Estimates, target: float | None) -> float:
    if target is not None:
        return target
    default = national_target()
    national_default(e, f"the default target ({default.arrests_per_day:,.0f} arrests a day, "
                        f"targets.csv {default.target_id})", "--target")
    return float(default.arrests_per_day)


def _funded_beds(e: Estimates) -> float:
    national_default(e, "the funded beds (capacity.csv)", "--beds")
    funded, _ = timeline_on("capacity.csv", "funded_beds", [e.start])
    if not np.isfinite(funded[0]):
        raise IceledgerError(f"capacity.csv has no sourced funded-bed count in force on "
                             f"{e.start}; give one with --beds N")
    return float(funded[0])
