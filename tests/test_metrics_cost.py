"""Cost metrics on three hand-built stays straddling the start of the first sourced rate."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pytest

from iceledger.metrics import MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.warehouse import Warehouse

CONVICTED, PENDING, OTHER = (
    "Convicted Criminal",
    "Pending Criminal Charges",
    "Other Immigration Violator",
)
FY2023_RATE = 187.48

# C1: held at the end of 29 and 30 Sep and 1 Oct, removed 2 Oct. C2: in at 00:00 on 1 Oct,
# removed that day (held at no day's end). C3: in on the evening of 3 Oct, still held at the
# release end (5 Oct). Midnight (end-of-day) population: 29 and 30 Sep 1; 1 Oct 1; 2 Oct 0;
# 3, 4 and 5 Oct 1.
STAYS = pa.Table.from_pylist(
    [
        {"stay_id": "C1", "release": "R", "stay_book_in": datetime(2022, 9, 29, 12),
         "stay_book_out": datetime(2022, 10, 2, 10), "stay_release_reason": "Removed",
         "criminality": CONVICTED, "aor": "Atlanta", "citizenship_country": "HONDURAS"},
        {"stay_id": "C2", "release": "R", "stay_book_in": datetime(2022, 10, 1),
         "stay_book_out": datetime(2022, 10, 1, 18), "stay_release_reason": "REMOVED",
         "criminality": OTHER, "aor": "Atlanta", "citizenship_country": "HONDURAS"},
        {"stay_id": "C3", "release": "R", "stay_book_in": datetime(2022, 10, 3, 20),
         "stay_book_out": None, "stay_release_reason": None,
         "criminality": PENDING, "aor": "Atlanta", "citizenship_country": "HONDURAS"},
    ],
    schema=pa.schema([("stay_id", pa.string()), ("release", pa.string()),
                      ("stay_book_in", pa.timestamp("us")), ("stay_book_out", pa.timestamp("us")),
                      ("stay_release_reason", pa.string()), ("criminality", pa.string()),
                      ("aor", pa.string()), ("citizenship_country", pa.string())]),
)
RELEASES = pa.table(
    {"release": ["R"], "coverage_start": [date(2022, 9, 1)], "coverage_end": [date(2022, 10, 5)]}
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    warehouse = Warehouse(tmp_path_factory.mktemp("cost") / "w.duckdb")
    warehouse.replace_table("foia_stays", STAYS)
    warehouse.replace_table("foia_releases", RELEASES)
    return duckdb_backend(warehouse.path)


def test_monthly_cost_with_the_packaged_rates(backend):
    sept, octo = compute("detention_cost", backend).to_pylist()
    # No sourced rate before FY2023 (1 Oct 2022): September's bed-days are counted, not priced.
    assert (sept["month"], sept["days"], sept["bed_days"]) == (date(2022, 9, 1), 2, 2)
    assert sept["rate_usd_per_day"] is None and sept["cost_usd"] is None
    assert sept["rate_source"].startswith("no rate")
    assert (octo["days"], octo["bed_days"], octo["rate_usd_per_day"]) == (5, 4, FY2023_RATE)
    assert octo["cost_usd"] == pytest.approx(4 * FY2023_RATE)
    assert octo["rate_basis"] == "reported" and "Marketplace" in octo["rate_source"]


def test_cost_per_removal_by_criminality(backend):
    result = compute("detention_cost_per_removal", backend, MetricParams(by=("criminality",)))
    assert [
        (r["criminality"], r["removals"], r["bed_days"], r["cost_usd"]) for r in result.to_pylist()
    ] == [
        (CONVICTED, 1, 3, pytest.approx(3 * FY2023_RATE)),
        (OTHER, 1, 0, 0.0),
    ]
    (both,) = compute("detention_cost_per_removal", backend).to_pylist()
    assert (both["removals"], both["bed_days"]) == (2, 3)
    assert both["cost_per_removal_usd"] == pytest.approx(3 * FY2023_RATE / 2)


def test_user_rates_split_a_month_and_are_named(backend, tmp_path, monkeypatch):
    (tmp_path / "cost_rates.csv").write_text(
        "effective_from,rate_usd_per_day,basis,source,source_date,note\n"
        "2022-09-01,100,test,rate A,2022,\n"
        "2022-10-04,200,test,rate B,,\n"
    )
    monkeypatch.setenv("ICELEDGER_FACTS_DIR", str(tmp_path))
    result = compute("detention_cost", backend).to_pylist()
    assert [(r["month"], r["bed_days"], r["cost_usd"], r["rate_source"]) for r in result] == [
        (date(2022, 9, 1), 2, 200.0, "rate A"),
        (date(2022, 10, 1), 2, 200.0, "rate A"),  # 1-3 Oct: 1 + 0 + 1 bed-days
        (date(2022, 10, 1), 2, 400.0, "rate B"),  # 4-5 Oct
    ]
    (removals,) = compute("detention_cost_per_removal", backend).to_pylist()
    # C1's 3 bed-days at rate A (removed 2 Oct); C2 was held at no day's end.
    assert (removals["cost_usd"], removals["cost_per_removal_usd"]) == (300.0, 150.0)
