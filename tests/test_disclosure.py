"""Small-cell suppression: no published cell under k, and no published total minus published cells
(nor any other linear combination of what is published) gives back a hidden small count."""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iceledger.serving.disclosure import (
    COMPLEMENTARY_LABEL,
    SUPPRESSION_COLUMN,
    all_margins,
    audit,
    plan_suppression,
    published_totals,
    rolling_windows,
    suppress,
)

K = 10


def _published_groups(table: pa.Table, count_column: str, dimensions, k):
    """Every total a reader can get (sums over any subset of dimensions), when it is itself
    publishable (not a small cell). Written independently of the module under test."""
    rows = table.to_pylist()
    groups = []
    for size in range(len(dimensions)):
        for kept in itertools.combinations(dimensions, size):
            by_key: dict = {}
            for i, row in enumerate(rows):
                by_key.setdefault(tuple(row[d] for d in kept), []).append(i)
            for members in by_key.values():
                total = sum(rows[i][count_column] for i in members)
                if not 0 < total < k:
                    groups.append(members)
    return groups


def _determined(hidden: list[int], groups) -> set[int]:
    """Hidden cells a reader can solve for exactly: rank drops when the cell's column is removed."""
    if not hidden:
        return set()
    incidence = np.array(
        [[1.0 if cell in members else 0.0 for cell in hidden] for members in groups] or
        [[0.0] * len(hidden)]
    )
    full_rank = np.linalg.matrix_rank(incidence)
    found = set()
    for position, cell in enumerate(hidden):
        without = np.delete(incidence, position, axis=1)
        rank_without = np.linalg.matrix_rank(without) if without.size else 0
        if rank_without < full_rank:
            found.add(cell)
    return found


def _tables(max_dims: int = 3):
    @st.composite
    def build(draw):
        n_dims = draw(st.integers(1, max_dims))
        sizes = [draw(st.integers(1, 4)) for _ in range(n_dims)]
        names = [f"d{i}" for i in range(n_dims)]
        cells = list(itertools.product(*(range(s) for s in sizes)))
        # Sparse tables (absent combinations) are what metrics really return.
        present = draw(st.lists(st.booleans(), min_size=len(cells), max_size=len(cells)))
        cells = [c for c, keep in zip(cells, present) if keep] or cells[:1]
        counts = draw(
            st.lists(
                st.one_of(st.integers(0, 12), st.integers(0, 200)),
                min_size=len(cells),
                max_size=len(cells),
            )
        )
        columns = {name: [f"v{c[i]}" for c in cells] for i, name in enumerate(names)}
        columns["people"] = counts
        columns["share"] = [c / max(sum(counts), 1) for c in counts]
        return pa.table(columns), names

    return build()


@settings(max_examples=150, deadline=None)
@given(_tables())
def test_no_published_cell_is_small_and_none_is_derivable(case):
    table, dims = case
    result = suppress(table, "people", dims, k=K)
    published = result.table
    rows = published.to_pylist()
    original = table.to_pylist()

    # Nothing lost or reordered; dimensions untouched.
    assert published.num_rows == table.num_rows
    for dim in dims:
        assert published.column(dim).to_pylist() == table.column(dim).to_pylist()

    hidden = sorted(result.plan.hidden)
    for i, (row, before) in enumerate(zip(rows, original)):
        if i in result.plan.hidden:
            assert row["people"] is None and row["share"] is None
            assert row[SUPPRESSION_COLUMN] in (f"<{K}", COMPLEMENTARY_LABEL)
        else:
            # No published cell under k, and published cells are the true numbers.
            assert not 0 < row["people"] < K
            assert row["people"] == before["people"] and row["share"] == before["share"]
            assert row[SUPPRESSION_COLUMN] is None
        if 0 < before["people"] < K:
            assert row[SUPPRESSION_COLUMN] == f"<{K}"

    groups = _published_groups(table, "people", dims, K)
    # Differences: no published total has exactly one hidden cell in it...
    for members in groups:
        inside = [i for i in members if i in result.plan.hidden]
        if len(inside) == 1:
            assert inside[0] not in result.plan.primary or inside[0] in result.plan.unprotectable
    # ...and no combination of published totals and cells pins a small cell down.
    determined = _determined(hidden, groups)
    assert determined & result.plan.primary <= result.plan.unprotectable
    # A cell is only given up when the totals alone reveal it, whatever the table hides.
    everything = list(range(table.num_rows))
    assert result.plan.unprotectable <= _determined(everything, groups)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=12),
    st.integers(2, 20),
)
def test_one_dimension_with_grand_total(counts, k):
    plan = plan_suppression(counts, [list(range(len(counts)))], k)
    total = sum(counts)
    assert plan.primary == {i for i, c in enumerate(counts) if 0 < c < k}
    if not 0 < total < k:
        assert len(plan.hidden) != 1


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=40),
    st.integers(1, 3),
    st.integers(2, 8),
)
def test_no_published_rolling_window_holds_a_hidden_cell(counts, groups, window):
    # Daily counts in one or more series, with a trailing sum over `window` days beside them.
    rows = []
    for series in range(groups):
        for day, n in enumerate(counts):
            rows.append({"day": day, "series": series, "people": n + series})
    for row in rows:
        same = [r for r in rows if r["series"] == row["series"] and row["day"] - window < r["day"] <= row["day"]]
        row["people_wd_sum"] = sum(r["people"] for r in same)
    table = pa.Table.from_pylist(rows)
    result = suppress(table, "people", ["day", "series"], k=K, rolling={"people_wd_sum": window})
    published = result.table.to_pylist()
    hidden = {(rows[i]["series"], rows[i]["day"]) for i in result.plan.hidden}
    for row in published:
        if row["people_wd_sum"] is not None:
            held = {(row["series"], d) for d in range(row["day"] - window + 1, row["day"] + 1)}
            assert not held & hidden
    # Rows outside every hidden window keep their value.
    for before, after in zip(rows, published):
        held = {(before["series"], d) for d in range(before["day"] - window + 1, before["day"] + 1)}
        if not held & hidden:
            assert after["people_wd_sum"] == before["people_wd_sum"]


def test_rolling_windows_are_read_from_column_names():
    assert rolling_windows(["date", "arrests", "arrests_7d_avg", "attainment_28d_pct", "odd"]) == {
        "arrests_7d_avg": 7,
        "attainment_28d_pct": 28,
    }


def test_two_by_two_rectangle_is_the_minimal_complement():
    table = pa.table(
        {
            "aor": ["A", "A", "B", "B", "C", "C"],
            "criminality": ["x", "y", "x", "y", "x", "y"],
            "people": [5, 20, 30, 40, 50, 60],
        }
    )
    result = suppress(table, "people", ["aor", "criminality"], k=10)
    assert result.plan.primary == {0}
    # Row A's other cell, column x's smallest other cell, and the corner that closes the rectangle.
    assert result.plan.complementary == {1, 2, 3}
    assert result.table.column(SUPPRESSION_COLUMN).to_pylist() == [
        "<10", COMPLEMENTARY_LABEL, COMPLEMENTARY_LABEL, COMPLEMENTARY_LABEL, None, None
    ]
    assert result.table.column("people").to_pylist() == [None, None, None, None, 50, 60]


def test_zero_is_published_and_large_cells_untouched():
    table = pa.table({"month": ["2025-01", "2025-02", "2025-03"], "people": [0, 45, 90]})
    result = suppress(table, "people", ["month"], k=10)
    assert not result.plan.hidden
    assert result.table.column("people").to_pylist() == [0, 45, 90]


def test_a_total_under_k_is_not_something_to_subtract_from():
    # Both cells are small, so the grand total (7) is itself small and hidden wherever shown;
    # the two primary cells need no complement.
    plan = plan_suppression([3, 4], [[0, 1]], k=10)
    assert plan.primary == {0, 1} and not plan.complementary


def test_totals_named_explicitly_limit_what_is_protected():
    table = pa.table({"aor": ["A", "B", "C"], "people": [3, 50, 60]})
    # Without a published grand total, hiding the small cell is enough.
    alone = suppress(table, "people", ["aor"], k=10, totals=[])
    assert alone.plan.hidden == {0}
    with_total = suppress(table, "people", ["aor"], k=10)
    assert with_total.plan.complementary == {1}


def test_totals_alone_can_reveal_a_cell_and_this_is_reported():
    # Field office A has one row; criminality y appears only under B. The published totals
    # B (35) and y (30) give B,x = 5 without any cell of this table, so it is reported.
    table = pa.table(
        {"aor": ["A", "B", "B"], "criminality": ["x", "x", "y"], "people": [50, 5, 30]}
    )
    result = suppress(table, "people", ["aor", "criminality"], k=10)
    assert result.plan.unprotectable == {1}


def test_all_margins_lists_every_proper_subset():
    assert all_margins(["a", "b"]) == ((), ("a",), ("b",))


def test_bad_arguments_are_named():
    table = pa.table({"aor": ["A"], "people": [3]})
    with pytest.raises(ValueError, match="columns not in the table: nope"):
        suppress(table, "nope", ["aor"])
    with pytest.raises(ValueError, match="k must be at least 1"):
        plan_suppression([1], [[0]], 0)


def test_public_facts_beside_a_hidden_count_stay_published():
    from datetime import date

    table = pa.table({
        "date": [date(2025, 6, 1), date(2025, 6, 2)],
        "target": ["may-2025-national-3000"] * 2,
        "target_per_day": [3000.0, 3000.0],
        "arrests": [4, 40],
        "attainment_pct": [0.13, 1.33],
    })
    shown = suppress(table, "arrests", ["date"], k=10, totals=[()]).table.to_pylist()
    # The small day and the one hidden with it lose every figure computed from arrests...
    assert [r["arrests"] for r in shown] == [None, None]
    assert [r["attainment_pct"] for r in shown] == [None, None]
    # ...but the target, a sourced public fact, and its name are still there.
    assert [r["target_per_day"] for r in shown] == [3000.0, 3000.0]
    assert [r["target"] for r in shown] == ["may-2025-national-3000"] * 2


def test_a_table_needing_more_hidden_cells_than_the_audit_takes_is_hidden_whole():
    from iceledger.serving.disclosure import MAX_AUDITED_CELLS

    counts = [1] * (MAX_AUDITED_CELLS + 1) + [50, 60]
    plan = plan_suppression(counts, [list(range(len(counts)))], k=K)
    assert plan.hidden == set(range(len(counts)))


def test_a_secret_total_is_not_left_derivable():
    # Cells 0 and 1 form a total a coarser table hid. With the grand total published, their sum
    # is the total minus cell 2 as long as cell 2 shows: all three go.
    plan = plan_suppression([40, 30, 50], [[0, 1, 2]], k=K, secret=[[0, 1]])
    assert plan.hidden == {0, 1, 2} and not plan.primary


def test_a_row_with_a_small_class_count_is_hidden_whole():
    table = pa.table({"month": ["a", "b", "c"], "arrests": [13, 40, 50], "convicted": [6, 20, 30],
                      "share": [0.46, 0.5, 0.6], "target": [100.0, 100.0, 100.0]})
    result = suppress(table, "arrests", ["month"], k=K, people=["convicted"], facts=["target"])
    rows = result.table.to_pylist()
    assert rows[0]["suppressed"] == f"<{K}" and rows[0]["convicted"] is None
    assert rows[0]["share"] is None and rows[0]["target"] == 100.0
    # The grand total is published, so a second month goes with it.
    assert len(result.plan.hidden) == 2


# --- a monthly table beside its fiscal-year totals ----------------------------------------------


def _fiscal_year(month: date) -> int:
    return month.year + (month.month >= 10)


def _grains(counts: dict[date, int], *, coarser: bool, coarse_secret: bool):
    """The monthly, fiscal-year and whole-period tables public mode would serve of `counts`,
    with the truth (one row per month, its fiscal year beside it)."""
    months = sorted(counts)
    truth = pa.table({"month": months, "fiscal_year": [_fiscal_year(m) for m in months],
                      "people": [counts[m] for m in months]})
    years = sorted(set(truth.column("fiscal_year").to_pylist()))
    yearly = pa.table({"fiscal_year": years, "people": [
        sum(c for m, c in counts.items() if _fiscal_year(m) == y) for y in years]})
    period = pa.table({"people": [sum(counts.values())]})
    yearly_shown = suppress(yearly, "people", ["fiscal_year"], k=K).table
    hidden_years = [(("month",), (row["fiscal_year"],)) for row in yearly_shown.to_pylist()
                    if row["suppressed"]]
    monthly = suppress(truth.drop_columns(["fiscal_year"]), "people", ["month"], k=K,
                       coarser={"month": _fiscal_year} if coarser else None,
                       coarse_secret=hidden_years if coarse_secret else ())
    published = [(monthly.table, ("month",)), (yearly_shown, ("fiscal_year",)), (period, ())]
    return monthly, published, truth


def test_a_small_month_hides_a_second_month_of_its_published_fiscal_year():
    # FY2024 (45 people) is published beside its months: with August's 5 hidden, September's 40
    # would give it back; the whole period's total alone would let another year's month go.
    counts = {date(2024, 8, 1): 5, date(2024, 9, 1): 40, date(2024, 10, 1): 30,
              date(2024, 11, 1): 25, date(2024, 12, 1): 35}
    alone, published, truth = _grains(counts, coarser=False, coarse_secret=False)
    assert {r["month"] for r in alone.table.to_pylist() if r["suppressed"]} == {
        date(2024, 8, 1), date(2024, 11, 1)}
    assert audit(published, truth, ["people"], K)
    planned, published, truth = _grains(counts, coarser=True, coarse_secret=True)
    hidden = {r["month"] for r in planned.table.to_pylist() if r["suppressed"]}
    assert {date(2024, 8, 1), date(2024, 9, 1)} <= hidden
    assert audit(published, truth, ["people"], K) == []


def test_a_fiscal_year_the_yearly_table_hid_stays_underivable_from_its_months():
    # FY2023 counts 4 people, so the yearly table hides it and FY2024 (50) beside it. Were
    # FY2024's months published, FY2024 would follow, and FY2023 as the period less the years.
    counts = {date(2023, 9, 1): 4, date(2024, 8, 1): 20, date(2024, 9, 1): 30,
              date(2024, 10, 1): 12, date(2024, 11, 1): 98}
    _, published, truth = _grains(counts, coarser=True, coarse_secret=False)
    assert audit(published, truth, ["people"], K)
    planned, published, truth = _grains(counts, coarser=True, coarse_secret=True)
    hidden = {r["month"] for r in planned.table.to_pylist() if r["suppressed"]}
    assert {date(2024, 8, 1), date(2024, 9, 1)} & hidden
    assert audit(published, truth, ["people"], K) == []


def test_no_total_is_planned_across_a_key_no_table_adds_up():
    # Recorded U.S. citizens per fiscal year and action: arrests, book-ins and removals of the
    # same people are never added up, so the one small cell (book-ins FY2023: 5) needs a second
    # book-ins year hidden, not a cascade through cross-action year totals no one publishes.
    counts = {(2023, "arrests"): 0, (2024, "arrests"): 18, (2025, "arrests"): 30,
              (2023, "book_ins"): 5, (2024, "book_ins"): 39, (2025, "book_ins"): 32,
              (2023, "removals"): 0, (2024, "removals"): 44, (2025, "removals"): 29}
    table = pa.table({"fiscal_year": [y for y, _ in counts], "action": [a for _, a in counts],
                      "people": list(counts.values())})
    dimensions = ["fiscal_year", "action"]
    assert published_totals(dimensions, ()) is None
    totals = published_totals(dimensions, ["action"])
    assert set(totals) == {("action",)}
    shown = suppress(table, "people", dimensions, k=K, totals=totals).table
    hidden = {(r["fiscal_year"], r["action"]) for r in shown.to_pylist() if r["suppressed"]}
    assert hidden == {(2023, "book_ins"), (2025, "book_ins")}
    everything = suppress(table, "people", dimensions, k=K).table
    assert len(hidden) < everything.num_rows - everything.column("suppressed").null_count
    # What public mode serves of these counts: the table, and each action over the period.
    per_action = pa.table({"action": ["arrests", "book_ins", "removals"],
                           "people": [48, 76, 73]})
    published = [(shown, ("fiscal_year", "action")), (per_action, ("action",))]
    assert audit(published, table, ["people"], K) == []
