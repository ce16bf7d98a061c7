"""Public mode's claims register: a claim's reading goes out only when its period, less the
monthly tables public mode publishes, gives no count under k back (docs/dashboard.md).

The hand-built record, k = 10, each day's arrests a third convicted, a third pending charges, a
third neither (so every definition's matching and other people are whole multiples):

    2025-01-05  30 arrests        2025-01-25  3 arrests (1, 1, 1)
    2025-02-10  30 arrests        2025-03-10  30 arrests
    2025-04-10   3 arrests        2025-05-05  30 arrests
"""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pytest

from iceledger.facts import facts_dir
from iceledger.serving.service import WarehouseService
from iceledger.warehouse import Warehouse

C, P, N = "Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator"
CLAIMS_HEADER = (
    "claim_id,date,who,wording,source,url,metric,period_start,period_end,claimed_value,"
    "claimed_definition,note\n"
)
DAYS = {date(2025, 1, 5): 10, date(2025, 1, 25): 1, date(2025, 2, 10): 10,
        date(2025, 3, 10): 10, date(2025, 4, 10): 1, date(2025, 5, 5): 10}
CLAIMS = CLAIMS_HEADER + (
    # Cuts January after the 20th, where 3 people were arrested.
    "cut-small,2025-03,w,t,s,,arrest_criminality_period,2025-01-20,2025-02-28,0.7,"
    "convicted_or_pending,\n"
    # Cuts February after its only day of arrests: the part after the cut counts 0.
    "cut-safe,2025-04,w,t,s,,arrest_criminality_period,2025-02-15,2025-03-31,60,count,\n"
    # Whole months only, but April (3 people) is hidden in the monthly table.
    "small-month,2025-05,w,t,s,,arrest_criminality_period,2025-02-01,2025-04-30,,,\n"
    # One whole month each: the monthly table hides one of them beside April.
    "february,2025-06,w,t,s,,arrest_criminality_period,2025-02-01,2025-02-28,,,\n"
    "march,2025-06,w,t,s,,arrest_criminality_period,2025-03-01,2025-03-31,,,\n"
)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("public-claims")
    when, classes = [], []
    for day, each in DAYS.items():
        for criminality in (C, P, N):
            when += [datetime(day.year, day.month, day.day, 9)] * each
            classes += [criminality] * each
    arrests = pa.table({
        "release": ["2025-06-01"] * len(when),
        "apprehension_date": pa.array(when, pa.timestamp("us")),
        "criminality": classes,
        "is_duplicate": [False] * len(when),
    })
    releases = pa.table({"release": ["2025-06-01"], "coverage_start": [date(2025, 1, 1)],
                         "coverage_end": [date(2025, 5, 31)]})
    store = Warehouse(root / "w.duckdb")
    store.replace_table("foia_arrests", arrests)
    store.replace_table("foia_releases", releases)
    (root / "facts").mkdir()
    (root / "facts" / "claims.csv").write_text(CLAIMS)
    return root


@pytest.fixture
def claims(warehouse):
    def checked(public: bool) -> tuple[dict, WarehouseService]:
        service = WarehouseService(warehouse / "w.duckdb", public=public, k=10)
        return {check.claim.claim_id: check for check in service.checked_claims()}, service

    with facts_dir(warehouse / "facts"):
        yield checked


def _count(check) -> float | None:
    return next(r.observed for r in check.readings if r.definition == "count")


def test_a_period_cutting_a_month_with_a_small_part_is_withheld(claims):
    full, service = claims(public=False)
    # The attack: the period's count less February's published month gives the 3 people
    # arrested in January after the 20th.
    months = service.compute(service.request("arrest_criminality")).table.to_pylist()
    february = sum(r["arrests"] for r in months if r["month"] == date(2025, 2, 1))
    assert _count(full["cut-small"]) - february == 3
    public, _ = claims(public=True)
    check = public["cut-small"]
    assert check.withheld.startswith("withheld in public mode: the period cuts 2025-01")
    assert "fewer than 10 people" in check.withheld
    assert check.verdict == check.withheld
    assert all(r.observed is None and r.ci_low is None for r in check.readings)
    stated = next(r for r in check.readings if r.definition == "convicted_or_pending")
    assert stated.claimed == pytest.approx(0.7), "the claimed figure, a fact, stays"


def test_a_whole_month_hidden_by_the_monthly_table_withholds_the_period(claims):
    full, _ = claims(public=False)
    # February and March are published (30 each): the period's 63 less them is April's 3.
    assert _count(full["small-month"]) == 63
    public, _ = claims(public=True)
    check = public["small-month"]
    assert check.withheld.startswith("withheld in public mode: 2025-04 counts fewer than 10")
    assert all(r.observed is None for r in check.readings)


def test_a_safe_period_is_shown_whole(claims):
    public, _ = claims(public=True)
    full, _ = claims(public=False)
    check = public["cut-safe"]
    assert not check.withheld
    assert check.readings == full["cut-safe"].readings
    assert _count(check) == 30, "March only: February's arrests fall before the 15th"
    readings = {r.definition: r.observed for r in check.readings}
    assert readings["convicted_or_pending"] == pytest.approx(2 / 3)


def test_full_mode_withholds_nothing(claims):
    full, _ = claims(public=False)
    assert not any(check.withheld for check in full.values())
    assert _count(full["cut-small"]) == 33


def test_a_period_holding_a_month_hidden_beside_a_small_one_is_withheld(claims):
    full, _ = claims(public=False)
    public, service = claims(public=True)
    months = service.compute(service.request("arrest_criminality")).table.to_pylist()
    hidden = {r["month"] for r in months if r["suppressed"]}
    april = date(2025, 4, 1)
    # April and at least one month beside it (the plan of the arrest tables may hide more).
    beside = sorted(hidden & {date(2025, 2, 1), date(2025, 3, 1)})
    assert april in hidden and len(beside) == 1, hidden
    (beside,) = beside
    claim_id = f"{beside:%B}".lower()
    # The attack: the period's count is the hidden month; the whole record less the published
    # months and it is what the other hidden months hold, April's 3 among them.
    published = sum(r["arrests"] for r in months if r["month"] not in hidden)
    others = sum(each * 3 for day, each in DAYS.items()
                 if date(day.year, day.month, 1) in hidden - {april, beside})
    assert sum(DAYS.values()) * 3 - published - _count(full[claim_id]) - others == 3
    check = public[claim_id]
    assert check.withheld.startswith(
        f"withheld in public mode: the monthly table hid {beside:%Y-%m} beside a month")
    assert all(r.observed is None for r in check.readings)
    assert not public["march" if claim_id == "february" else "february"].withheld
