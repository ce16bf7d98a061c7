"""SYNTHETIC detention-statistics workbooks drawn from a synthetic FOIA warehouse: the real
workbook parser reads them whole, they are labelled synthetic, and their figures are the FOIA
records' own (hand-checked against the FOIA metrics)."""

from __future__ import annotations

import shutil
from collections import defaultdict

import ibis
import pytest

from iceledger import metrics  # noqa: F401 - importing registers every metric
from iceledger.metrics.registry import compute
from iceledger.sources.stats.ingest import ingest_stats
from iceledger.synth.workbooks import ICE_SHARE, write_synthetic_workbooks
from iceledger.warehouse import Warehouse


@pytest.fixture(scope="module")
def warehouse(synthetic_warehouse, tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic-workbooks")
    path = root / "w.duckdb"
    shutil.copy(synthetic_warehouse, path)
    paths = write_synthetic_workbooks(path, root / "workbooks")
    assert paths and all(p.name.startswith("SYNTHETIC_") for p in paths)
    summary = ingest_stats(paths, Warehouse(path))
    assert not summary.failed, [f.errors for f in summary.files]
    assert all(f.rows_quarantined == 0 for f in summary.files)
    return path


def test_workbooks_load_labelled_synthetic(warehouse):
    with Warehouse(warehouse).connect(read_only=True) as con:
        stats = con.execute(
            "SELECT count(*), bool_and(synthetic) FROM ingest_sources WHERE kind = 'stats'"
        ).fetchone()
    assert stats[0] >= 2 and stats[1] is True


def test_published_figures_are_the_foia_records_own(warehouse):
    backend = ibis.duckdb.connect(str(warehouse), read_only=True)
    book_ins = defaultdict(int)
    for row in compute("book_ins_per_day", backend).to_pylist():
        book_ins[row["date"].replace(day=1)] += row["book_ins"]
    published = compute("published_book_ins", backend).to_pylist()
    assert published
    # Whole months of the newest release: the total printed is the FOIA count of book-ins.
    whole = [r for r in published
             if r["month"] in book_ins and r["as_of_date"] >= r["month"].replace(day=28)]
    assert len(whole) >= 3
    for row in whole:
        assert row["book_ins"] == book_ins[row["month"]], row["month"]
    detained = compute("detained_criminality", backend).to_pylist()[-1]
    population = {r["date"]: r for r in compute("population_criminality", backend).to_pylist()}
    day = population[detained["date"]]
    assert detained["convicted"] == day["convicted"]
    assert detained["detained"] == day["population_midnight"] - day["criminality_unknown"]
    by_agency = compute("detained_criminality", backend, metrics.MetricParams(
        by=("agency",))).to_pylist()
    ice = next(r for r in by_agency if r["agency"] == "ICE" and r["date"] == detained["date"])
    assert ice["convicted"] == round(day["convicted"] * ICE_SHARE)
    backend.disconnect()


def test_published_book_outs_by_reason_are_the_stays_that_ended(warehouse):
    backend = ibis.duckdb.connect(str(warehouse), read_only=True)
    rows = compute("book_outs_by_reason", backend).to_pylist()
    both = [r for r in rows if r["published_book_outs"] is not None and r["foia_book_outs"]]
    assert len(both) >= 5
    assert all(r["published_book_outs"] == r["foia_book_outs"] for r in both)
    backend.disconnect()
