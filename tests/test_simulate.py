"""The strategy simulator: estimation recovers known parameters, the solvers reproduce known
population paths and agree with each other, every strategy runs and every refusal says why."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from importlib.resources import files
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.errors import IceledgerError
from iceledger.facts import FACTS_ENV
from iceledger.metrics import MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.simulate.backtest import DEFAULT_CUTOFF, Comparison, backtest
from iceledger.simulate.estimate import (
    MAX_AGE,
    NO_ICE_ARREST,
    OUTCOMES,
    Estimates,
    NotMeasurable,
    _fill_empty_classes,
    estimate,
    life_table,
    mean_stay,
)
from iceledger.simulate.solve import Scenario, _start_weights, simulate, steady_state
from iceledger.simulate.strategies import (
    USER_TEMPLATE,
    national_target,
    observed,
    office_shares,
    same_budget_as,
    scenarios,
    targeted,
    user_defined,
    volume,
)

COVERAGE = (date(2023, 1, 1), date(2025, 12, 31))
# The known world: per class, arrests a day, P(book-in), daily hazard of leaving (a geometric
# number of midnights, mean (1 - h) / h), P(removal | book-out) and P(violent | convicted).
WORLD = {
    ("Convicted Criminal", "custodial"): dict(per_day=6, book_in=0.9, hazard=1 / 31, removed=0.8),
    ("Convicted Criminal", "at-large"): dict(per_day=2, book_in=0.8, hazard=1 / 21, removed=0.7),
    ("Other Immigration Violator", "at-large"): dict(per_day=10, book_in=0.6, hazard=1 / 11,
                                                     removed=0.3),
}
VIOLENT_SHARE = 0.25


def build_known_world(path: Path, seed: int = 3) -> Path:
    """A warehouse holding only the columns the simulator reads, drawn from WORLD."""
    rng = np.random.default_rng(seed)
    start, end = COVERAGE
    first = np.datetime64(start.isoformat(), "us")
    censor_at = np.datetime64(end.isoformat(), "us")
    day, hour = np.timedelta64(1, "D"), np.timedelta64(1, "h")
    parts = []
    for (criminality, setting), p in WORLD.items():
        per_day = rng.poisson(p["per_day"], (end - start).days)
        n = per_day.sum()
        when = first + np.repeat(np.arange(len(per_day)), per_day) * day + 10 * hour
        booked = rng.random(n) < p["book_in"]
        midnights = rng.geometric(p["hazard"], n) - 1
        book_in = when + 4 * hour
        book_out = book_in + midnights * day
        parts.append(dict(
            when=when, criminality=np.full(n, criminality), setting=np.full(n, setting),
            booked=booked, book_in=book_in, book_out=book_out,
            removed=rng.random(n) < p["removed"],
            violent=(rng.random(n) < VIOLENT_SHARE) & (criminality == "Convicted Criminal"),
        ))
    w = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    n = len(w["when"])
    ids = np.arange(n).astype(str)
    aor = np.where(np.arange(n) % 2 == 0, "Atlanta", "Dallas")
    arrests = pa.table({
        "record_id": np.char.add("a", ids), "apprehension_date": w["when"],
        "criminality": w["criminality"], "arrest_setting": w["setting"], "aor": aor,
        "is_duplicate": np.zeros(n, bool), "release": np.full(n, "r1"),
    })
    b = w["booked"]
    open_stay = w["book_out"][b] > censor_at
    ends = np.where(open_stay, censor_at, w["book_out"][b])
    stays = pa.table({
        "stay_id": np.char.add("s", ids[b]), "release": np.full(b.sum(), "r1"),
        "stay_book_in": w["book_in"][b],
        "stay_book_out": pa.array(w["book_out"][b], mask=open_stay),
        "censored": open_stay,
        "length_days": (ends - w["book_in"][b]) / day,
        "stay_release_reason": pa.array(
            np.where(w["removed"][b], "Removed", "Bonded Out"), mask=open_stay),
        "criminality": w["criminality"][b], "aor": aor[b],
        "msc_crime_class": np.where(w["violent"][b], "Violent", "Non-Violent"),
    })
    links = pa.table({"arrest_record_id": np.char.add("a", ids[b]),
                      "stay_id": np.char.add("s", ids[b]), "apprehension_date": w["when"][b]})
    releases = pa.table({"release": ["r1"], "coverage_start": [start], "coverage_end": [end]})
    with duckdb.connect(str(path)) as con:
        for name, table in (("foia_releases", releases), ("foia_arrests", arrests),
                            ("foia_stays", stays), ("foia_arrest_stay_links", links)):
            con.register("incoming", table)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")
            con.unregister("incoming")
    return path


@pytest.fixture(scope="module")
def known_world(tmp_path_factory) -> Path:
    return build_known_world(tmp_path_factory.mktemp("known") / "known.duckdb")


@pytest.fixture(scope="module")
def known_estimates(known_world) -> Estimates:
    return estimate(duckdb_backend(known_world), replicates=100)


def test_estimation_recovers_the_known_world(known_estimates):
    e = known_estimates
    stay = mean_stay(e.leave)
    for (criminality, setting), p in WORLD.items():
        c = e.class_index(criminality, setting)[0]
        assert e.book_in[0, c] == pytest.approx(p["book_in"], abs=0.02)
        true_mean = (1 - p["hazard"]) / p["hazard"]
        assert stay[0, c] == pytest.approx(true_mean, rel=0.05)
        low, high = np.percentile(stay[1:, c], [0.5, 99.5])
        assert low < true_mean < high
        ends = e.stay_summary[1][0, c]
        assert ends[OUTCOMES.index("removed")] == pytest.approx(p["removed"], abs=0.03)
        assert ends[OUTCOMES.index("released")] == pytest.approx(1 - p["removed"], abs=0.03)
    convicted = e.class_index("Convicted Criminal", "custodial")[0]
    assert e.violent_share[0, convicted] == pytest.approx(VIOLENT_SHARE, abs=0.03)
    assert e.recent_arrests.sum() == pytest.approx(18, rel=0.1)
    assert set(e.offices) == {"Atlanta", "Dallas"}


def test_estimated_stay_agrees_with_the_length_of_stay_metric(known_world, known_estimates):
    """Both censor open stays at the release end; the metric restricts its mean to 365 days and
    counts fractional days, the model counts midnights: with these short stays they agree."""
    metric = compute("length_of_stay", duckdb_backend(known_world),
                     MetricParams(by=("criminality",), end=COVERAGE[1] - timedelta(days=1)))
    by_criminality = dict(zip(metric.column("criminality").to_pylist(),
                              metric.column("restricted_mean_days").to_pylist()))
    e = known_estimates
    stay = mean_stay(e.leave)[0]
    book_ins = e.recent_arrests.sum(axis=0) * e.book_in[0]
    for criminality in by_criminality:
        classes = e.class_index(criminality)
        pooled = np.average(stay[classes], weights=book_ins[classes])
        assert pooled == pytest.approx(by_criminality[criminality], rel=0.03)


def test_life_table_respects_censoring():
    """Half the stays are cut off after 5 midnights: dropping them would halve the mean,
    the life table does not."""
    hazard = 0.1
    lengths = np.arange(MAX_AGE + 2)
    expected = 10_000 * hazard * (1 - hazard) ** lengths
    ended = np.zeros((len(OUTCOMES), MAX_AGE + 2))
    ended[0] = expected
    censored = np.zeros(MAX_AGE + 2)
    censored[5] = ended[0, 5:].sum() / 2
    ended[0, 5:] /= 2
    leave, shares = life_table(ended, censored)
    assert mean_stay(leave) == pytest.approx((1 - hazard) / hazard, rel=0.03)
    assert shares[0, 3] == 1.0


def test_life_table_counts_the_days_past_its_grid():
    """Stays of a year and a half on average: most run past the grid, and the person-days they
    spend there keep the last band's hazard right."""
    hazard = 1 / 500
    lengths = np.arange(20 * MAX_AGE)
    counts = 100_000 * hazard * (1 - hazard) ** lengths
    ended = np.zeros((len(OUTCOMES), MAX_AGE + 2))
    ended[0, :MAX_AGE + 1] = counts[:MAX_AGE + 1]
    ended[0, MAX_AGE + 1] = counts[MAX_AGE + 1:].sum()
    past = (counts[MAX_AGE + 1:] * (lengths[MAX_AGE + 1:] - (MAX_AGE + 1))).sum()
    leave, _ = life_table(ended, np.zeros(MAX_AGE + 2), np.array(past))
    assert mean_stay(leave) == pytest.approx((1 - hazard) / hazard, rel=0.02)
    leave_without, _ = life_table(ended, np.zeros(MAX_AGE + 2))
    assert mean_stay(leave_without) < 0.9 * (1 - hazard) / hazard


def known_model(hazard: float, per_day: float, days: int, replicates: int = 3) -> Scenario:
    """A one-class, one-office model with a known constant hazard, nobody held at the start."""
    classes = (("Convicted Criminal", "custodial"),)
    e = Estimates(
        classes=classes, offices=("Atlanta",), start=date(2026, 1, 1),
        leave=np.full((replicates, 1, MAX_AGE), hazard),
        outcome_share=np.tile(np.array([1.0, 0, 0, 0])[None, None, :, None],
                              (replicates, 1, 1, MAX_AGE)),
        book_in=np.ones((replicates, 1)), violent_share=np.full((replicates, 1), 0.5),
        no_arrest_book_ins=np.zeros((replicates, 1, 1)),
        held_at_start=np.zeros((1, 1, MAX_AGE)),
        weekly_arrests=np.zeros((0, 1, 1)), recent_arrests=np.array([[per_day]]),
    )
    return observed(e, days, beds=1_000)


def test_simulation_reproduces_a_known_population_path():
    hazard, per_day, days = 0.05, 200.0, 120
    scenario = known_model(hazard, per_day, days)
    result = simulate(scenario, runs=400, seed=1)
    median = np.median(result.values["population"], axis=0)
    t = np.arange(days)
    # Admissions of day s are held at midnight t > s with probability (1 - h)^(t - s).
    known = per_day * (1 - hazard) * (1 - (1 - hazard) ** t) / hazard
    assert median[1:] == pytest.approx(known[1:], rel=0.02)
    removals = np.median(result.values["removals"], axis=0)
    assert removals[-1] == pytest.approx(per_day * (1 - (1 - hazard) ** days), rel=0.05)
    assert result.values["over_funded_beds"][:, -1].mean() == pytest.approx(
        known[-1] - 1_000, rel=0.02)
    assert result.office_population.sum(axis=-1) == pytest.approx(result.values["population"])


def test_steady_state_and_simulation_agree(known_estimates):
    scenario = observed(known_estimates, 730)
    settled = steady_state(scenario)
    simulated = simulate(scenario, runs=200, seed=2)
    last_month = simulated.values["population"][:, -30:].mean(axis=1)
    assert np.median(last_month) == pytest.approx(settled.values["population"][0], rel=0.03)
    removals = simulated.values["removals"][:, -30:].mean(axis=1)
    assert np.median(removals) == pytest.approx(settled.values["removals"][0], rel=0.05)
    # Little's law on the known world itself.
    held = sum(p["per_day"] * p["book_in"] * (1 - p["hazard"]) / p["hazard"]
               for p in WORLD.values())
    assert settled.values["population"][0] == pytest.approx(held, rel=0.08)


def test_people_held_at_the_start_leave_along_the_curve(known_world, known_estimates):
    e = known_estimates
    assert e.held_at_start.sum() > 0
    nobody_arrested = observed(replace(e, recent_arrests=np.zeros_like(e.recent_arrests),
                                       no_arrest_book_ins=np.zeros_like(e.no_arrest_book_ins)),
                               200)
    population = np.median(simulate(nobody_arrested, runs=50).values["population"], axis=0)
    assert population[0] == pytest.approx(e.held_at_start.sum())
    assert population[-1] < population[0] * 0.02  # mean stays of 10 to 30 midnights


def test_strategies(known_estimates, tmp_path):
    e = known_estimates
    quota = volume(e, 365, 100)
    assert quota.arrests_by_class[..., 0, :].sum(axis=-1) == pytest.approx(100)
    reference = steady_state(quota).values
    same = same_budget_as(quota, 365)
    settled = steady_state(same).values
    assert settled["population"][0] == pytest.approx(reference["population"][0], rel=1e-6)
    assert settled["removals_convicted"][0] == pytest.approx(settled["removals"][0])
    custodial = e.class_index("Convicted Criminal", "custodial")[0]
    assert same.arrests_by_class[0, custodial] > 0
    assert steady_state(observed(e, 365)).values["book_ins"][0] == pytest.approx(
        sum(p["per_day"] * p["book_in"] for p in WORLD.values()), rel=0.1)

    spec = tmp_path / "bond.toml"
    spec.write_text('name = "bond"\narrests_per_day = 10\n'
                    '[mix]\n"Other Immigration Violator/at-large" = 1\n'
                    '[policy]\nrelease_on_bond_share = 1.0\nbond_after_days = 2\n')
    bond = steady_state(user_defined(e, spec, 365)).values
    # Everybody still held after 2 midnights is released then: at most 2 midnights each.
    assert bond["population"][0] <= 2 * bond["book_ins"][0] + 1e-9
    assert bond["released"][0] > bond["removals"][0]


def test_targeted_needs_convicted_arrests(known_estimates):
    e = known_estimates
    no_custody = tuple((c, NO_ICE_ARREST) if s == "custodial" else (c, s)
                       for c, s in e.classes)
    with pytest.raises(NotMeasurable, match="not measurable from these records"):
        targeted(replace(e, classes=no_custody), 365, 100, "test")


@pytest.mark.parametrize("problem, key", [
    ("arrests_per_day = -1", "arrests_per_day"),
    ('arrests_per_day = 5\n[mix]\n"Nobody/anywhere" = 1', "is not a class"),
    ("arrests_per_day = 5\nquota = 3", "unknown key"),
    ("arrests_per_day = 5\n[policy]\nrelease_on_bond_share = 2", "release_on_bond_share"),
])
def test_user_file_errors_name_the_file(known_estimates, tmp_path, problem, key):
    spec = tmp_path / "bad.toml"
    spec.write_text(problem)
    with pytest.raises(IceledgerError, match=key) as caught:
        user_defined(known_estimates, spec, 365)
    assert str(spec) in str(caught.value)


def test_the_default_target_is_the_facts_latest_national_one(tmp_path, monkeypatch):
    shipped = national_target()
    assert (shipped.target_id, shipped.arrests_per_day) == ("may-2025-national-3000", 3000)
    # A user's facts folder with a later national target (and an alternative report of it,
    # and a field-office quota, neither of which is a national default).
    lines = (files("iceledger.data").joinpath("facts", "targets.csv").read_text()
             .rstrip("\n").splitlines())
    ended = [line.replace("2025-05-21,,", "2025-05-21,2026-01-31,", 1) for line in lines]
    later = ["jan-2026-national-4000,2026-02-01,,,national,4000,primary,4000 a day,Test,"
             "2026-02-01,",
             "jan-2026-national-5000,2026-03-01,,,national,5000,alternative,5000 a day,Test,"
             "2026-03-01,",
             "jan-2026-office-99,2026-04-01,,,field_office,99,alternative,99 an office,Test,"
             "2026-04-01,"]
    (tmp_path / "targets.csv").write_text("\n".join([*ended, *later]) + "\n")
    monkeypatch.setenv(FACTS_ENV, str(tmp_path))
    chosen = national_target()
    assert (chosen.target_id, chosen.arrests_per_day) == ("jan-2026-national-4000", 4000)
    # None national: the volume strategy asks for its figure.
    (tmp_path / "targets.csv").write_text("\n".join([lines[0], lines[1]]) + "\n")
    with pytest.raises(IceledgerError, match="no primary national target.*--target N"):
        national_target()


def test_national_defaults_are_refused_for_records_of_part_of_the_country(known_world,
                                                                          known_estimates):
    # The known world's records are of two field offices, Atlanta and Dallas.
    (where,) = known_estimates.part_of_country
    assert where.startswith("release r1's records in foia_arrests name 2 of ICE's 25 field "
                            "offices (Atlanta, Dallas)")
    with pytest.raises(NotMeasurable, match=r"the default target \(3,000 arrests a day, "
                       r"targets.csv may-2025-national-3000\) is national, and release r1's "
                       r"records .* \(Atlanta, Dallas\): give "
                       r"--target for that part of the country"):
        scenarios(known_estimates, ["volume"], 365)
    with pytest.raises(NotMeasurable, match=r"the funded beds \(capacity.csv\) is national.*: "
                       "give --beds"):
        scenarios(known_estimates, ["targeted"], 365, 100, fill="funded-beds")
    chosen = scenarios(known_estimates, ["observed", "volume", "targeted"], 365, 100)
    assert [s.name for s in chosen] == ["observed", "volume", "targeted"]
    # The backtest compares the two offices' simulated population with their own count only.
    assert any("compared with the FOIA count only" in note
               for note in backtest(duckdb_backend(known_world), runs=20,
                                    replicates=10).assumptions)


def test_volume_refuses_without_a_rise(known_estimates):
    flat = replace(known_estimates, weekly_arrests=np.ones((20, 2, len(known_estimates.classes))))
    with pytest.raises(NotMeasurable, match="did not rise"):
        volume(flat, 365, 100)


@pytest.mark.parametrize("drop, named", [
    ("DROP TABLE foia_arrests", "no foia_arrests table"),
    ("ALTER TABLE foia_stays DROP COLUMN length_days", "foia_stays has no column(s) length_days"),
    ("ALTER TABLE foia_arrests DROP COLUMN arrest_setting", "arrest_setting"),
])
def test_refuses_when_columns_are_missing(tmp_path, drop, named):
    path = build_known_world(tmp_path / "w.duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute(drop)
    with pytest.raises(NotMeasurable, match="not measurable from these records") as caught:
        estimate(duckdb_backend(path), replicates=5)
    assert named in str(caught.value)


def test_runs_on_the_synthetic_warehouse(synthetic_warehouse):
    e = estimate(duckdb_backend(synthetic_warehouse), replicates=30)
    assert e.counts["stays"] > 0 and e.held_at_start.sum() > 0
    result = simulate(volume(e, 90, 20), runs=60)
    assert np.isfinite(result.values["population"]).all()
    assert (result.values["population"][:, -1] > result.values["population"][:, 0]).all()


def test_backtest_reproduces_a_steady_known_world(known_world):
    result = backtest(duckdb_backend(known_world), runs=200, replicates=60)
    assert result.mode == "foia" and result.start == DEFAULT_CUTOFF
    daily = result.comparisons[0]
    assert daily.target == "FOIA midnight population"
    assert daily.periods[0] == DEFAULT_CUTOFF
    assert daily.mape < 5
    assert daily.misses <= 0.2 * len(daily.periods)
    assert "MAPE" in daily.verdict()


def test_a_redraw_without_stays_of_a_class_keeps_its_observed_curve():
    # Replicate 0 is the records as they are; replicate 2 drew no stay of class 1 (a rare one),
    # and class 2 has stays none of which has ended (no outcomes).
    classes = (("Convicted Criminal", "custodial"), ("Convicted Criminal", "at-large"),
               ("Convicted Criminal", "other"))
    leave = np.full((3, 3, MAX_AGE), 0.1)
    leave[2, 1] = np.nan
    leave[:, 2] = 0.0
    outcome_share = np.full((3, 3, len(OUTCOMES), MAX_AGE), 1 / len(OUTCOMES))
    outcome_share[0, 1] = 0.5 / len(OUTCOMES)
    outcome_share[2, 1] = np.nan
    outcome_share[:, 2] = np.nan
    notes: list[str] = []
    leave, outcome_share = _fill_empty_classes(leave, outcome_share, classes, notes)
    assert not np.isnan(leave).any() and not np.isnan(outcome_share).any()
    assert (leave[2, 1] == leave[0, 1]).all()
    assert (outcome_share[2, 1] == outcome_share[0, 1]).all()
    assert (leave[:, 2] == 0).all()  # no one has left: its outcomes come from the others
    assert notes == ["no ended stays of class Convicted Criminal/other: its outcomes are those "
                     "of the other stays of its criminality"]


def test_a_comparison_the_model_gives_no_value_for_is_not_measurable():
    periods = [date(2025, 6, 1), date(2025, 7, 1)]
    blank = np.array([np.nan, 100.0])
    lost = Comparison("t", "month", periods, np.array([100.0, 110.0]), blank, blank, blank, "s")
    assert lost.verdict() == "t: not measurable: the model gives no value for 1 of 2 months"


def test_backtest_says_when_the_model_misses():
    periods = [date(2025, 6, 1), date(2025, 7, 1)]
    hit = Comparison("t", "month", periods, np.array([100.0, 110.0]), np.array([100.0, 100.0]),
                     np.array([90.0, 90.0]), np.array([105.0, 120.0]), "s")
    assert hit.mape == pytest.approx((0 + 10 / 110) / 2 * 100)
    assert "every month lies inside" in hit.verdict()
    missed = replace(hit, high=np.array([105.0, 105.0]))
    assert missed.misses == 1
    assert "misses by more than its 90% interval on 1 of 2 months" in missed.verdict()


def test_backtest_on_the_synthetic_warehouse(synthetic_warehouse):
    result = backtest(duckdb_backend(synthetic_warehouse), runs=100, replicates=30)
    assert result.mode == "foia"
    assert np.isfinite(result.comparisons[0].mape)


def test_backtest_refuses_an_empty_warehouse(tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(NotMeasurable, match="no foia_stays table"):
        backtest(duckdb_backend(path), runs=10)


@pytest.fixture(scope="module")
def workbooks_only(stats_workbooks, tmp_path_factory) -> Path:
    from iceledger.sources.stats.ingest import ingest_stats
    from iceledger.warehouse import Warehouse

    # The two latest workbooks reprint FY2025 and FY2026 month by month: 12 months before the
    # cutoff's month and several after it.
    latest = [f for f in stats_workbooks if f.name.startswith(("FY25_", "FY26_"))]
    if len(latest) < 2:
        pytest.skip("the FY2025 and FY2026 workbooks are not among the shared workbooks")
    path = tmp_path_factory.mktemp("workbooks") / "w.duckdb"
    assert not ingest_stats(latest, Warehouse(path)).failed
    return path


def test_backtest_on_real_workbooks_says_what_it_cannot_do(workbooks_only):
    result = backtest(duckdb_backend(workbooks_only), runs=200)
    assert result.mode == "workbooks"
    adp, detained = result.comparisons
    assert adp.target == "ICE published ADP" and len(adp.periods) >= 3
    assert 0 < adp.mape < 25
    assert detained.target == "ICE published detained count" and detained.periods
    assert any("not measurable from these records" in line for line in result.cannot)
    assert any("published book-ins" in line for line in result.cannot)


def _cli(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_cli_simulate_prints_every_strategy_with_the_synthetic_label(synthetic_warehouse):
    result = _cli("simulate", "--warehouse", str(synthetic_warehouse), "--target", "20",
                  "--days", "60", "--runs", "50", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["synthetic"] and "SYNTHETIC" in document["banner"]
    strategies = {row["strategy"] for row in document["summary"]}
    assert strategies == {"observed", "volume", "targeted"}
    solvers = {row["solver"] for row in document["summary"]}
    assert solvers == {"steady state", "stochastic"}
    assert {r["date"] for r in document["daily"]} >= {"2026-03-11"}
    offices = [r for r in document["field_offices"] if r["strategy"] == "observed"]
    assert len(offices) == 25
    observed_mean = next(r["estimate"] for r in document["summary"] if r["strategy"] ==
                         "observed" and r["measure"] == "mean_population")
    assert sum(r["mean_population"] for r in offices) == pytest.approx(observed_mean, rel=0.1)
    table = _cli("simulate", "--warehouse", str(synthetic_warehouse), "-s", "volume",
                 "--target", "20", "--days", "30", "--runs", "20")
    assert table.exit_code == 0, table.output
    assert "cost_per_violent_removal_usd" in table.output and "SYNTHETIC DATA" in table.output
    csv_daily = _cli("simulate", "--warehouse", str(synthetic_warehouse), "-s", "observed",
                     "--days", "10", "--runs", "20", "--format", "csv", "--daily")
    assert csv_daily.exit_code == 0
    assert csv_daily.stdout.splitlines()[0] == "strategy,date,measure,median,low_90,high_90"


def test_cli_backtest_and_refusals(synthetic_warehouse, tmp_path):
    result = _cli("simulate", "backtest", "--warehouse", str(synthetic_warehouse),
                  "--runs", "30")
    assert result.exit_code == 0, result.output
    assert "FOIA midnight population: MAPE" in result.output
    assert "SYNTHETIC DATA" in result.output
    no_stays = tmp_path / "no-stays.duckdb"
    shutil.copy(synthetic_warehouse, no_stays)
    with duckdb.connect(str(no_stays)) as con:
        con.execute("DROP TABLE foia_stays")
    refused = _cli("simulate", "--warehouse", str(no_stays))
    assert refused.exit_code == 1
    assert "not measurable from these records: the warehouse has no foia_stays" in \
        refused.output
    assert "simulate backtest" in refused.output
    assert "Traceback" not in refused.output


def test_api_serves_a_strategy_and_refuses_in_public_mode(synthetic_warehouse):
    from fastapi.testclient import TestClient

    from iceledger.web.app import create_app

    client = TestClient(create_app(synthetic_warehouse))
    answer = client.get("/api/simulate", params={"strategy": "volume", "target": 20,
                                                 "days": 90})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["synthetic"] is True and body["strategy"] == "volume"
    assert len(body["path"]) == 90 and body["path"][0]["date"] == "2026-03-11"
    population = {r["measure"]: r for r in body["steady_state"]}["population"]
    assert population["low_90"] <= population["estimate"] <= population["high_90"]
    assert any("marginal mix" in line.lower() for line in body["assumptions"])
    assert client.get("/api/simulate", params={"strategy": "quota"}).status_code == 400
    public = TestClient(create_app(synthetic_warehouse, public=True))
    assert public.get("/api/simulate").status_code == 409


def test_report_prints_the_backtest_error(synthetic_warehouse, tmp_path):
    from iceledger.report.build import build_report

    html = build_report(synthetic_warehouse, tmp_path / "report.html").html_path.read_text()
    section = html[html.index('<section id="simulator-backtest">'):]
    section = section[:section.index("</section>")]
    assert "FOIA midnight population: MAPE" in section
    assert "Cannot:" in section


def test_strategy_page_is_in_the_navigation_and_says_why_not_in_public(synthetic_warehouse):
    from fastapi.testclient import TestClient

    from iceledger.web.app import create_app

    page = TestClient(create_app(synthetic_warehouse)).get("/pages/simulate")
    assert page.status_code == 200
    assert 'id="simulate-form"' in page.text and "/static/simulate.js" in page.text
    assert 'href="/pages/simulate" aria-current="page"' in page.text
    public = TestClient(create_app(synthetic_warehouse, public=True)).get("/pages/simulate").text
    assert "Not served in public mode" in public and "simulate-form" not in public


def test_turning_people_away_at_capacity():
    hazard, per_day, days, beds = 0.05, 200.0, 120, 2_000
    scenario = known_model(hazard, per_day, days)
    scenario = replace(scenario, beds=beds)
    held = simulate(scenario, runs=200, seed=3, capacity="turn-away")
    population = held.values["population"]
    assert population.max() <= beds + 1e-6
    # Unconstrained, the population passes 2,000 on the day (1 - h)(1 - (1 - h)^t) / h * 200
    # does (about day 13); from then on the beds are full and the rest are turned away.
    assert np.median(population[:, 40:], axis=0) == pytest.approx(beds, rel=0.01)
    turned = held.values["turned_away"]
    assert turned[:, :8].sum() == 0 and turned[:, 40:].mean() > 0
    admitted = held.values["book_ins"][:, 40:].mean()
    assert admitted == pytest.approx(beds * hazard / (1 - hazard), rel=0.05)  # Little's law
    overrun = simulate(scenario, runs=50, seed=3)
    assert overrun.values["over_funded_beds"][:, -1].mean() > 1_000
    assert "turned_away" not in overrun.values
    with pytest.raises(IceledgerError, match="needs a funded-bed count"):
        simulate(replace(scenario, beds=None), runs=5, capacity="turn-away")


def test_office_shares_fall_back_to_all_arrests():
    e = known_model(0.1, 10, 30).estimates
    weekly = np.zeros((3, 2, 2))
    weekly[:, 0, 0], weekly[:, 1, 0] = 3, 1  # class 0: three quarters in the first office
    two_offices = replace(e, offices=("A", "B"), classes=e.classes * 2, weekly_arrests=weekly)
    shares = office_shares(two_offices)
    assert shares[:, 0] == pytest.approx([0.75, 0.25])
    assert shares[:, 1] == pytest.approx([0.75, 0.25])  # no arrests of its own: all arrests'


def test_the_documented_template_runs(known_estimates, tmp_path):
    spec = tmp_path / "template.toml"
    spec.write_text(USER_TEMPLATE)
    scenario = user_defined(known_estimates, spec, 365)
    assert scenario.name == "bond" and scenario.arrests_by_class[0].sum() == pytest.approx(1500)
    methodology = (Path(__file__).resolve().parents[1] / "docs" / "methodology.md").read_text()
    assert USER_TEMPLATE in methodology


def test_people_held_longer_than_a_replicate_reaches_go_on_from_its_oldest_age():
    # Replicate 1's redraw kept no stay past 1 midnight: its survival is 0 from age 2, where
    # two people are already held. They go on as if held 1 midnight, not as infinite weights.
    held = np.array([[[1.0, 0.5, 0.25]], [[1.0, 0.5, 0.0]]])
    start_held = np.array([[4.0, 1.0, 2.0]])
    weights = _start_weights(start_held, held)
    assert weights.tolist() == [[[4.0, 2.0, 8.0]], [[4.0, 6.0, 0.0]]]
