"""Before/after spans beside monthly and daily tables: the split guard (disclosure.unsafe_splits).

Each test builds a small series by hand, publishes it as the public tables would (a monthly table,
a daily table suppressed against its month totals, the spans before and after a split date), and
lets the auditor (`disclosure.audit`, the attacker's side) solve the equations they give: the
attack that works on the spans as they are fails on the spans the guard lets out.
"""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pytest

from iceledger.serving import disclosure

K = 10
SPLIT = date(2025, 5, 21)


def _days(counts: dict[date, int]) -> pa.Table:
    """The finest cells: one row per day, with its month and its side of each split."""
    return pa.Table.from_pylist([
        {"date": day, "month": day.replace(day=1), "people": n} for day, n in sorted(counts.items())
    ])


def _series(april: int, may_before: list[int], may_after: list[int], june: int) -> dict:
    """April and June as one day each (whole months only), May day by day."""
    counts = {date(2025, 4, 1): april, date(2025, 6, 1): june}
    for offset, n in enumerate([*may_before, *may_after]):
        counts[date(2025, 5, 1) + timedelta(days=offset)] = n
    assert len(may_before) == SPLIT.day - 1 and len(may_before) + len(may_after) == 31
    return counts


def _monthly(truth: pa.Table, planned: list[date] = ()) -> pa.Table:
    """The monthly table as public mode plans it: against, for each planned split date, the
    whole months before the month it cuts and those after it."""
    months = truth.group_by("month").aggregate([("people", "sum")])
    months = months.rename_columns(["month", "people"])
    return disclosure.suppress(months, "people", ["month"], k=K,
                               coarser={"month": disclosure.whole_months_beside(planned)}).table


def _spans(truth: pa.Table, splits: list[date]) -> list[tuple[pa.Table, tuple[str, ...]]]:
    """The before/after rows as tables the auditor reads: per split, a row per side, keyed by
    the side column added to the truth (`before_<date>`)."""
    published = []
    for split in splits:
        key = f"before_{split:%Y%m%d}"
        rows = [{key: side, "people": sum(r["people"] for r in truth.to_pylist()
                                          if (r["date"] < split) == side)}
                for side in (True, False)]
        published.append((pa.Table.from_pylist(rows), (key,)))
    return published


def _with_sides(truth: pa.Table, splits: list[date]) -> pa.Table:
    for split in splits:
        truth = truth.append_column(
            f"before_{split:%Y%m%d}",
            pa.array([d < split for d in truth.column("date").to_pylist()]),
        )
    return truth


def _guard(truth: pa.Table, splits: list[date], planned: list[date] = ()) -> dict[date, str]:
    """What the service hands the guard: the counts before every cut it asks for, and the split
    dates the daily table was planned against."""
    rows = truth.to_pylist()
    total = [float(sum(r["people"] for r in rows))]
    cuts = {cut for split in splits if split.day != 1 for cut in disclosure.split_cuts(split)}
    before = {cut: {("people",): [float(sum(r["people"] for r in rows if r["date"] < cut))]}
              for cut in cuts}
    return disclosure.unsafe_splits(before, {("people",): total}, splits, K, planned=planned)


def _published_spans(truth, splits, planned=()):
    """The spans of the splits the guard lets out, and why the others are not."""
    unsafe = _guard(truth, splits, planned)
    return _spans(truth, [s for s in splits if s not in unsafe]), unsafe


def _attack(truth: pa.Table, published) -> list[disclosure.Recovery]:
    return disclosure.audit(published, truth, ["people"], K)


def _daily(truth: pa.Table, planned: list[date] = (), monthly: pa.Table | None = None
           ) -> disclosure.SuppressedTable:
    """The daily table as public mode plans it: against its months and, for each planned split
    date, its spans and the parts of the month it cuts; with the months the `monthly` table hid
    as secrets."""
    hidden = [] if monthly is None else [(("date",), (m,)) for m in _hidden_months(monthly)]
    return disclosure.suppress(
        truth.select(["date", "month", "people"]), "people", ["date"], k=K,
        coarser={"date": (lambda d: d.replace(day=1), *disclosure.split_totals(planned))},
        coarse_secret=hidden,
    )


def _hidden_days(daily: disclosure.SuppressedTable) -> list[date]:
    return [r["date"] for r in daily.table.to_pylist() if r["suppressed"]]


def _hidden_months(monthly: pa.Table) -> list[date]:
    return [r["month"] for r in monthly.to_pylist() if r["suppressed"]]


def test_a_span_less_the_whole_months_gives_a_part_of_a_month_back():
    # May 1-20 holds 4 people (one finest cell: the auditor solves for cells), May 21-31 33:
    # April and May are published whole (both large), and the span before May 21 less April is
    # those 4.
    counts = {date(2025, 4, 1): 50, date(2025, 5, 1): 4, SPLIT: 33, date(2025, 6, 1): 60}
    truth = _with_sides(_days(counts), [SPLIT])
    monthly = (_monthly(truth), ("month",))
    assert monthly[0].column("suppressed").null_count == monthly[0].num_rows
    assert _attack(truth, [monthly]) == []
    leaked = _attack(truth, [monthly, *_spans(truth, [SPLIT])])
    assert [r.value for r in leaked] == [4]
    # The guard refuses the split, and with its rows hidden nothing comes back.
    shown, unsafe = _published_spans(truth, [SPLIT])
    assert set(unsafe) == {SPLIT} and "2025-05" in unsafe[SPLIT]
    assert shown == []
    assert _attack(truth, [monthly, *shown]) == []


def test_a_split_whose_days_and_parts_are_all_large_is_published_and_reveals_nothing_small():
    truth = _with_sides(_days(_series(50, [12] * 20, [15] * 11, 60)), [SPLIT])
    monthly = (_monthly(truth), ("month",))
    daily = (disclosure.suppress(truth.select(["date", "month", "people"]), "people", ["date"],
                                 k=K, coarser={"date": lambda d: d.replace(day=1)}).table,
             ("date",))
    shown, unsafe = _published_spans(truth, [SPLIT])
    assert unsafe == {} and len(shown) == 1
    assert _attack(truth, [monthly, daily, *shown]) == []


def test_a_hidden_day_is_given_back_by_a_large_part_of_its_month():
    # Both parts of May are large, but May 3 (4 people) is hidden in the daily table, with May 21
    # (the smallest other day) hidden beside it so that May's total does not give it back. The
    # span before May 21 less April, less the published days of May 1-20, is May 3.
    before = [20] * 20
    before[2] = 4
    after = [15] * 11
    truth = _with_sides(_days(_series(50, before, after, 60)), [SPLIT])
    daily_table = disclosure.suppress(truth.select(["date", "month", "people"]), "people",
                                      ["date"], k=K, coarser={"date": lambda d: d.replace(day=1)})
    hidden_days = [r["date"] for r in daily_table.table.to_pylist() if r["suppressed"]]
    assert date(2025, 5, 3) in hidden_days
    assert any(d >= SPLIT and d.month == 5 for d in hidden_days)
    monthly = (_monthly(truth), ("month",))
    daily = (daily_table.table, ("date",))
    assert _attack(truth, [monthly, daily]) == []
    assert any(r.value == 4 for r in _attack(truth, [monthly, daily, *_spans(truth, [SPLIT])]))
    shown, unsafe = _published_spans(truth, [SPLIT])
    assert set(unsafe) == {SPLIT}
    assert _attack(truth, [monthly, daily, *shown]) == []


def test_two_splits_in_a_month_give_the_days_between_them_back():
    # May 11-13 hold 6 people (one cell), the rest of May hundreds: the span before May 14 less
    # the span before May 11 is those 6, whatever else is published.
    first, second = date(2025, 5, 11), date(2025, 5, 14)
    counts = {date(2025, 5, 1): 120, first: 6, second: 200}
    truth = _with_sides(_days(counts), [first, second])
    assert [r.value for r in _attack(truth, _spans(truth, [first, second]))] == [6]
    shown, unsafe = _published_spans(truth, [first, second])
    assert set(unsafe) == {first, second}
    assert _attack(truth, shown) == []


def test_a_split_on_the_first_of_a_month_is_never_published():
    # June 1 cuts no month: the span before it is April and May, a total the monthly table's
    # suppression did not count as published (April 4 and July 3 hidden, June beside them).
    counts = {date(2025, 4, 1): 4, date(2025, 5, 1): 50, date(2025, 6, 1): 60,
              date(2025, 7, 1): 3}
    split = date(2025, 6, 1)
    truth = _with_sides(_days(counts), [split])
    monthly = (_monthly(truth), ("month",))
    assert _attack(truth, [monthly]) == []
    assert _attack(truth, [monthly, *_spans(truth, [split])])
    unsafe = _guard(truth, [split])
    assert set(unsafe) == {split} and "first of a month" in unsafe[split]


def test_a_split_in_another_month_is_judged_alone():
    safe, unsafe_split = date(2025, 5, 21), date(2025, 6, 11)
    counts = _series(50, [12] * 20, [15] * 11, 60)
    del counts[date(2025, 6, 1)]
    for offset in range(30):
        counts[date(2025, 6, 1) + timedelta(days=offset)] = 1 if offset < 10 else 12
    truth = _with_sides(_days(counts), [safe, unsafe_split])
    shown, unsafe = _published_spans(truth, [safe, unsafe_split])
    assert set(unsafe) == {unsafe_split}
    assert [keys for _, keys in shown] == [("before_20250521",)]
    monthly = (_monthly(truth), ("month",))
    assert _attack(truth, [monthly, *shown]) == []


def test_month_parts_name_each_day_by_the_first_day_of_its_part():
    part_of = disclosure.month_parts([date(2025, 1, 26), date(2025, 1, 20), date(2025, 8, 1)])
    assert [part_of(date(2025, 1, d)) for d in (1, 19, 20, 25, 26, 31)] == [
        date(2025, 1, 1), date(2025, 1, 1), date(2025, 1, 20), date(2025, 1, 20),
        date(2025, 1, 26), date(2025, 1, 26)]
    # A month no split cuts, and one cut on its first day only, are one part.
    assert part_of(date(2025, 2, 14)) == date(2025, 2, 1)
    assert part_of(date(2025, 8, 14)) == date(2025, 8, 1)


def test_a_daily_table_planned_with_the_parts_hides_a_second_day_in_the_small_days_part():
    # The case the day rule refuses (test_a_hidden_day_is_given_back_by_a_large_part_of_its_month):
    # May 3 counts 4, both parts of May are large. Planned against the parts, the daily table hides
    # a second day of May 1-20 beside May 3, so that part less its published days is two days, not
    # one; the split at a planned date is published, and nothing small comes back from the
    # monthly table, the daily table and the spans read together.
    before = [20] * 20
    before[2] = 4
    truth = _with_sides(_days(_series(50, before, [15] * 11, 60)), [SPLIT])
    daily_table = _daily(truth, planned=[SPLIT])
    in_part = [d for d in _hidden_days(daily_table) if d.month == 5 and d < SPLIT]
    assert date(2025, 5, 3) in in_part and len(in_part) >= 2
    monthly = (_monthly(truth), ("month",))
    daily = (daily_table.table, ("date",))
    shown, unsafe = _published_spans(truth, [SPLIT], planned=[SPLIT])
    assert unsafe == {} and len(shown) == 1
    assert _attack(truth, [monthly, daily, *shown]) == []


def test_one_day_parts_leave_their_month_to_the_day_rule():
    splits = [date(2025, 5, 21), date(2025, 6, 2), date(2025, 7, 10), date(2025, 7, 11),
              date(2025, 8, 31), date(2025, 9, 1)]
    assert disclosure.without_one_day_parts(splits) == {date(2025, 5, 21)}


def test_a_small_month_across_the_split_needs_both_plans():
    # February counts 4; every day of May counts 12, so the split's parts and days are large.
    # Planned against months alone, the monthly table hides June (11) beside February and the
    # daily table publishes every day of May: the span before May 21 less the published days
    # before it is February. Each plan alone leaves it: a monthly table planned against the
    # split's whole months (February and March before May, June after) beside a daily table
    # that counts March as published gives March's day and so February; a daily table keeping
    # the monthly table's hidden months (February and June) beside a monthly table that hid
    # June gives June from the span after the split, and February from the span before it.
    counts = {date(2025, 2, 1): 4, date(2025, 3, 1): 40, date(2025, 4, 1): 50,
              date(2025, 6, 1): 11}
    counts |= {date(2025, 5, 1) + timedelta(days=n): 12 for n in range(31)}
    truth = _with_sides(_days(counts), [SPLIT])
    shown, unsafe = _published_spans(truth, [SPLIT], planned=[SPLIT])
    assert unsafe == {} and len(shown) == 1

    def attack(monthly, daily):
        return [r.value for r in _attack(truth, [(monthly, ("month",)),
                                                 (daily.table, ("date",)), *shown])]

    months_only = _monthly(truth)
    assert _hidden_months(months_only) == [date(2025, 2, 1), date(2025, 6, 1)]
    months_only_daily = _daily(truth)
    assert _hidden_days(months_only_daily) == [date(2025, 2, 1), date(2025, 6, 1)]
    assert set(attack(months_only, months_only_daily)) == {4}
    beside_split = _monthly(truth, planned=[SPLIT])
    assert _hidden_months(beside_split) == [date(2025, 2, 1), date(2025, 3, 1)]
    assert set(attack(beside_split, _daily(truth, planned=[SPLIT]))) == {4}
    assert set(attack(months_only, _daily(truth, [SPLIT], months_only))) == {4}
    planned = _daily(truth, planned=[SPLIT], monthly=beside_split)
    assert {date(2025, 2, 1), date(2025, 3, 1)} <= set(_hidden_days(planned))
    assert attack(beside_split, planned) == []


def test_a_month_hidden_as_a_complement_keeps_its_days_from_giving_it_back():
    # No split date: the monthly table hides June (36, three days of 12) beside February (4). A
    # daily table counting every month that is not small as published hides February's day and
    # two of March's (its smallest days), so it publishes every day of June: June, then the
    # whole period's total less the other months, is February. Keeping the months the monthly
    # table hid as secrets, it hides a day of June too.
    counts = {date(2025, 1, 1): 100, date(2025, 2, 1): 4, date(2025, 3, 1): 10,
              date(2025, 3, 2): 11, date(2025, 3, 3): 50, date(2025, 4, 1): 100,
              date(2025, 5, 1): 100, date(2025, 6, 1): 12, date(2025, 6, 2): 12,
              date(2025, 6, 3): 12}
    truth = _days(counts)
    monthly = _monthly(truth)
    assert _hidden_months(monthly) == [date(2025, 2, 1), date(2025, 6, 1)]
    period = pa.table({"people": [sum(counts.values())]})
    published = [(monthly, ("month",)), (period, ())]
    months_only = _daily(truth)
    assert not any(d.month == 6 for d in _hidden_days(months_only))
    leaked = _attack(truth, [*published, (months_only.table, ("date",))])
    assert {r.value for r in leaked} == {4}
    kept = _daily(truth, monthly=monthly)
    assert any(d.month == 6 for d in _hidden_days(kept))
    assert _attack(truth, [*published, (kept.table, ("date",))]) == []


def _sibling(months: pa.Table, column: str, values: list[int], secret=()) -> pa.Table:
    """A monthly table of the same people as `months` with a class count of its own."""
    table = months.append_column(column, pa.array(values, pa.int64()))
    return disclosure.suppress(table, "people", ["month"], k=K, people=[column],
                               secret=secret).table.select(["month", "people", "suppressed"])


def test_two_tables_of_the_same_months_hide_the_same_complement():
    # February counts 4. Planned alone, the table of outcomes hides March too (1 removed there:
    # its own small count), which keeps February from the period's total; the table of
    # convictions hides June (the smallest month). Read together, each publishes the month the
    # other hid beside February: every month but February is published, and the period's total
    # gives it back. A plan of the month totals alone hides February and June; with those as
    # secrets, both tables hide June, and nothing comes back.
    months = [date(2025, m, 1) for m in range(1, 7)]
    people = [30, 4, 25, 40, 12, 11]
    truth = pa.table({"month": months, "people": people})
    period = pa.table({"people": [sum(people)]})
    outcomes = [10, 1, 3, 20, 0, 0]
    convicted = [15, 2, 12, 30, 10, 10]
    alone = [_sibling(truth, "removed", outcomes), _sibling(truth, "convicted", convicted)]
    assert [_hidden_months(t) for t in alone] == [[months[1], months[2]],
                                                  [months[1], months[5]]]
    published = [(t, ("month",)) for t in alone] + [(period, ())]
    assert {r.value for r in _attack(truth, published)} == {4}
    shared = disclosure.shared_total_secrets(truth, "people", ["month"], K)
    assert shared == [(("month",), (months[1],)), (("month",), (months[5],))]
    joint = [_sibling(truth, "removed", outcomes, shared),
             _sibling(truth, "convicted", convicted, shared)]
    assert all(months[5] in _hidden_months(t) for t in joint)
    assert _attack(truth, [(t, ("month",)) for t in joint] + [(period, ())]) == []


def test_a_secret_total_each_row_publishes_hides_every_row_of_it():
    # Each row shows its month's arrests with a setting (a column of the month's total):
    # February's 44 goes out wherever one of its rows shows. A plan taking February as a secret
    # total (hidden beside a small month in a table of the same people) leaves February's other
    # setting out, and the month's total less it gives the 4 back; hidden whole, nothing does.
    months = [date(2025, m, 1) for m in (1, 2, 3)]
    counts = {months[0]: (0, 12), months[1]: (4, 40), months[2]: (4, 3)}
    table = pa.Table.from_pylist([
        {"month": month, "setting": setting, "people": n, "with_setting": sum(both)}
        for month, both in counts.items() for setting, n in zip(("custodial", "at-large"), both)
    ])
    secret = [(("month",), (months[1],))]
    cells = ("month", "setting")
    totals = [("with_setting", "people", "setting")]

    def attack(**planned):
        shown = disclosure.suppress(table, "people", cells, k=K, people=["with_setting"],
                                    secret=secret, **planned).table
        return shown, disclosure.audit([(shown, cells)], table, ["people"], K, totals)

    shown, leaked = attack()
    assert shown.column("suppressed").to_pylist()[2:4] == ["<10", None]
    assert {r.value for r in leaked} == {4}
    shown, leaked = attack(secret_in_rows=secret)
    assert shown.column("suppressed").to_pylist()[2:4] == ["<10", "complementary"]
    assert leaked == []


def test_two_planned_splits_in_a_month_plan_each_part_between_them():
    # May 11-13 (between two planned splits) hold 12, 3 and 40: the days between the splits are a
    # part of their own, so May 12 needs a second hidden day inside May 11-13, not anywhere in May.
    first, second = date(2025, 5, 11), date(2025, 5, 14)
    days = [15] * 31
    days[10:13] = [12, 3, 40]
    counts = {date(2025, 5, 1) + timedelta(days=n): c for n, c in enumerate(days)}
    counts |= {date(2025, 4, 1): 50, date(2025, 6, 1): 60}
    truth = _with_sides(_days(counts), [first, second])
    daily_table = _daily(truth, planned=[first, second])
    between = [d for d in _hidden_days(daily_table) if first <= d < second]
    assert date(2025, 5, 12) in between and len(between) >= 2
    shown, unsafe = _published_spans(truth, [first, second], planned=[first, second])
    assert unsafe == {} and len(shown) == 2
    monthly = (_monthly(truth), ("month",))
    assert _attack(truth, [monthly, (daily_table.table, ("date",)), *shown]) == []


def test_a_planned_split_with_a_small_part_is_still_hidden():
    # May 21-31 count 4 in all: the part itself is small, whatever the days were planned against.
    truth = _with_sides(_days(_series(50, [20] * 20, [4] + [0] * 10, 60)), [SPLIT])
    unsafe = _guard(truth, [SPLIT], planned=[SPLIT])
    assert set(unsafe) == {SPLIT} and unsafe[SPLIT].startswith("a part of the month")


def test_a_split_not_planned_keeps_the_day_rule():
    # May 3 counts 4. The daily table was planned against May 25's parts, not May 21's: it hid
    # May 21 (the smallest other day of May 1-24) beside May 3, so May 21's first part less its
    # published days gives May 3 back, and May 21 stays hidden. May 21 asked for beside a planned
    # split in its month is not planned either (the days between them were no part of the plan).
    before = [20] * 20
    before[2] = 4
    truth = _with_sides(_days(_series(50, before, [15] * 11, 60)), [SPLIT])
    other = date(2025, 5, 25)
    daily_table = _daily(truth, planned=[other])
    assert _hidden_days(daily_table) == [date(2025, 5, 3), SPLIT]
    monthly = (_monthly(truth), ("month",))
    daily = (daily_table.table, ("date",))
    assert any(r.value == 4 for r in _attack(truth, [monthly, daily, *_spans(truth, [SPLIT])]))
    shown, unsafe = _published_spans(truth, [SPLIT], planned=[other])
    assert set(unsafe) == {SPLIT} and unsafe[SPLIT].startswith("a day or a part")
    assert _attack(truth, [monthly, daily, *shown]) == []
    assert set(_guard(truth, [other, SPLIT], planned=[other])) == {other, SPLIT}


def test_hide_rows_keeps_keys_and_labels_only_rows_not_hidden_already():
    table = pa.table({"split_date": [SPLIT, SPLIT], "definition": ["a", "b"],
                      "before_records": [40, 3], "before_share": [0.5, 0.3],
                      "suppressed": [None, "<10"]})
    hidden = disclosure.hide_rows(table, {0, 1}, "<10", kept={"definition"})
    assert hidden.column("suppressed").to_pylist() == ["<10", "<10"]
    assert hidden.column("before_records").to_pylist() == [None, None]
    assert hidden.column("before_share").to_pylist() == [None, None]
    assert hidden.column("definition").to_pylist() == ["a", "b"]
    assert hidden.column("split_date").to_pylist() == [SPLIT, SPLIT]


def test_secret_months_stay_secret_beside_the_parts_of_the_months_a_split_cuts():
    # March and April, which no split cuts, are each their own part: the parts' totals do not
    # publish them again. Kept secret (the monthly table hid both), each keeps a hidden day
    # though every day counts 12; the span before May 21 less May's first part is their sum.
    counts = {date(2025, month, 1) + timedelta(days=n): 12 for month in (3, 4) for n in range(3)}
    counts |= {date(2025, 5, 1) + timedelta(days=n): 15 for n in range(31)}
    truth = _with_sides(_days(counts), [SPLIT])
    secret = [(("date",), (date(2025, month, 1),)) for month in (3, 4)]
    daily = disclosure.suppress(
        truth.select(["date", "month", "people"]), "people", ["date"], k=K,
        coarser={"date": (lambda d: d.replace(day=1), *disclosure.split_totals([SPLIT]))},
        coarse_secret=secret,
    )
    assert {d.month for d in _hidden_days(daily)} == {3, 4}
