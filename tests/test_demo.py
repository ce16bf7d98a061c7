"""The demo's one-screen headlines: each figure is read from the registered metric it names."""

from __future__ import annotations

import ibis
import pytest

from iceledger.demo import TARGET_DATE, _number, _share, headlines
from iceledger.metrics.registry import MetricParams, compute


@pytest.fixture(scope="module")
def backend(synthetic_warehouse):
    connection = ibis.duckdb.connect(str(synthetic_warehouse), read_only=True)
    yield connection
    connection.disconnect()


@pytest.fixture(scope="module")
def lines(synthetic_warehouse):
    return {metric: (figure, value) for figure, value, metric in headlines(synthetic_warehouse)}


def test_every_headline_names_its_metric(lines):
    assert list(lines) == ["arrests_vs_target", "arrest_criminality_period",
                           "detained_population_daily", "length_of_stay"]


def test_arrests_headline_is_the_last_day_against_the_primary_target(lines, backend):
    rows = compute("arrests_vs_target", backend).to_pylist()
    primary = [r for r in rows if r["target_status"] == "primary"][-1]
    figure, value = lines["arrests_vs_target"]
    assert str(primary["date"]) in figure
    assert value == (f"{_number(primary['arrests_7d_avg'])} against the {primary['target']} "
                     f"target of {_number(primary['target_per_day'])} "
                     f"({_number(primary['attainment_7d_pct'])}%)")


def test_criminality_headline_gives_both_definitions_since_the_target_date(lines, backend):
    row = compute("arrest_criminality_period", backend,
                  MetricParams(start=TARGET_DATE)).to_pylist()[0]
    figure, value = lines["arrest_criminality_period"]
    assert figure.startswith(f"arrests {row['period_start']} to {row['period_end']}")
    assert value.startswith(_share(row["no_conviction_share"]))
    assert _share(row["no_conviction_no_charge_share"]) in value


def test_population_and_stay_headlines(lines, backend):
    last = compute("detained_population_daily", backend).to_pylist()[-1]
    assert lines["detained_population_daily"] == (
        f"people detained on {last['date']}",
        f"{_number(last['population_midnight'])} at midnight, "
        f"{_number(last['population_24h'])} at any time that day",
    )
    stay = compute("length_of_stay", backend).to_pylist()[0]
    assert lines["length_of_stay"][1].startswith(f"{_number(stay['km_median_days'])} days")
