"""Headline facts fall through their sources: records that cannot measure a fact give way to
ICE's published figure, and a fact no source answers says why and names the metric refused."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa

from iceledger.serving.headlines import headline_facts
from iceledger.serving.service import WarehouseService
from iceledger.warehouse import Warehouse

ARRESTS = 40


def _arrests_without_criminality(warehouse: Warehouse) -> None:
    """FOIA arrest records of June 2025 that hold no criminality class, as some releases do."""
    warehouse.replace_table("foia_arrests", pa.table({
        "release": ["R"] * ARRESTS,
        "apprehension_date": pa.array([datetime(2025, 6, 1 + i % 28, 9) for i in range(ARRESTS)],
                                      pa.timestamp("us")),
        "criminality": pa.array([None] * ARRESTS, pa.string()),
        "is_duplicate": [False] * ARRESTS,
        "person_id": [f"p{i}" for i in range(ARRESTS)],
    }))
    warehouse.replace_table("foia_releases", pa.table({
        "release": ["R"], "coverage_start": [date(2025, 6, 1)], "coverage_end": [date(2025, 6, 30)],
    }))


def _facts(path) -> dict:
    return {fact.key: fact for fact in headline_facts(WarehouseService(path))}


def test_records_that_cannot_measure_give_way_to_the_published_figure(stats_workbooks, tmp_path):
    from iceledger.sources.stats.ingest import ingest_stats

    [workbook] = [p for p in stats_workbooks if p.name == "FY26_detentionStats02022026.xlsx"]
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_stats([workbook], warehouse)
    _arrests_without_criminality(warehouse)
    facts = _facts(warehouse.path)
    fact = facts["no_conviction"]
    assert fact.metric == "published_adp"
    # The cost is ICE's ADP times a rate: its definition is the ADP's metric, which these
    # records can compute, not detention_cost, which they cannot.
    assert facts["cost_per_day"].metric == "published_adp"
    assert fact.sentence.startswith("74% of the people ICE held on an average day in "
                                    "December 2025 had no criminal conviction")
    assert fact.as_of == "2026-01-25"


def test_a_fact_no_source_answers_names_the_metric_refused(tmp_path):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    _arrests_without_criminality(warehouse)
    fact = _facts(warehouse.path)["no_conviction"]
    assert fact.value == "not measurable"
    assert fact.sentence.startswith("Not available: not measurable from these records")
    assert "criminality" in fact.sentence
    assert fact.metric == "arrest_criminality_period"
    assert fact.definition_url == "/pages/targeting#metric-arrest_criminality_period"



def test_arrest_records_ending_before_the_target_say_so_in_public_mode_too(tmp_path):
    import threading

    warehouse = Warehouse(tmp_path / "w.duckdb")
    n = 40
    warehouse.replace_table("foia_arrests", pa.table({
        "release": ["R"] * n,
        "apprehension_date": pa.array([datetime(2019, 6, 1 + i % 28, 9) for i in range(n)],
                                      pa.timestamp("us")),
        "criminality": pa.array([None] * n, pa.string()),
        # arrests_by_method nests in arrest_setting_share: public mode memoises the grouping.
        "apprehension_method": ["Located"] * n,
        "arrest_setting": ["at-large"] * n,
        "is_duplicate": [False] * n,
        "person_id": [f"p{i}" for i in range(n)],
    }))
    warehouse.replace_table("foia_releases", pa.table({
        "release": ["R"], "coverage_start": [date(2019, 6, 1)], "coverage_end": [date(2019, 6, 30)],
    }))
    found = {}
    # Public mode's suppression memoises inside the headlines' own memo: it once waited on
    # itself forever, so the facts are collected in a thread that must finish.
    worker = threading.Thread(target=lambda: found.update(
        (f.key, f) for f in headline_facts(WarehouseService(warehouse.path, public=True))),
        daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the headline facts never finished"
    sentence = found["arrests_vs_target"].sentence
    assert sentence.endswith("not measurable from these records (the FOIA arrest records "
                             "loaded end on 2019-06-30, before any target).")
