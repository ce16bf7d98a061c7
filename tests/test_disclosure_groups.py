"""Rows that nest in the groups another table publishes (apprehension methods in arrest settings):
planned with the groups' totals as published, a small row's complement is found inside its group,
and the two tables read together give no count under k back."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from iceledger.serving.disclosure import (
    COMPLEMENTARY_LABEL,
    SUPPRESSION_COLUMN,
    LinkedTable,
    audit,
    plan_linked,
    suppress,
)

K = 10
JAN, FEB = date(2025, 1, 1), date(2025, 2, 1)
SETTING = {"CAP Local Incarceration": "custodial", "287(g) Program": "custodial",
           "Located": "at-large", "Non-Custodial Arrest": "at-large"}
# The 287(g) arrests of January are 4: a small cell inside the custodial setting.
ARRESTS = {
    (JAN, "CAP Local Incarceration"): 40, (JAN, "287(g) Program"): 4,
    (JAN, "Located"): 30, (JAN, "Non-Custodial Arrest"): 25,
    (FEB, "CAP Local Incarceration"): 50, (FEB, "287(g) Program"): 20,
    (FEB, "Located"): 35, (FEB, "Non-Custodial Arrest"): 30,
}


def _truth(arrests=ARRESTS) -> pa.Table:
    return pa.Table.from_pylist([
        {"month": month, "apprehension_method": method, "arrest_setting": SETTING[method],
         "arrests": n}
        for (month, method), n in arrests.items()
    ])


def _settings(arrests=ARRESTS) -> pa.Table:
    totals: dict = {}
    for (month, method), n in arrests.items():
        key = (month, SETTING[method])
        totals[key] = totals.get(key, 0) + n
    table = pa.Table.from_pylist([{"month": m, "arrest_setting": s, "arrests": n}
                                  for (m, s), n in totals.items()])
    return suppress(table, "arrests", ["month", "arrest_setting"], k=K).table


def _methods(coarser=None) -> pa.Table:
    table = _truth().drop_columns(["arrest_setting"])
    return suppress(table, "arrests", ["month", "apprehension_method"], k=K,
                    coarser=coarser).table


def _hidden(table: pa.Table) -> dict:
    return {(row["month"], row["apprehension_method"]): row[SUPPRESSION_COLUMN]
            for row in table.to_pylist() if row[SUPPRESSION_COLUMN]}


def _published(methods: pa.Table, settings: pa.Table):
    return [(methods, ("month", "apprehension_method")), (settings, ("month", "arrest_setting"))]


def test_a_small_method_is_complemented_inside_its_setting():
    settings = _settings()
    assert not any(settings.column(SUPPRESSION_COLUMN).to_pylist())  # every setting is shown
    methods = _methods(coarser={"apprehension_method": SETTING.get})
    hidden = _hidden(methods)
    assert hidden[(JAN, "287(g) Program")] == f"<{K}"
    # The setting's total less its other methods would give the 4 back: the other custodial
    # method of the month is hidden with it, and the 287(g) total over the months is protected
    # by February's 287(g) cell, whose month and setting are then closed inside the setting too.
    assert hidden[(JAN, "CAP Local Incarceration")] == COMPLEMENTARY_LABEL
    assert hidden[(FEB, "287(g) Program")] == COMPLEMENTARY_LABEL
    assert hidden[(FEB, "CAP Local Incarceration")] == COMPLEMENTARY_LABEL
    assert not {m for _, m in hidden} & {"Located", "Non-Custodial Arrest"}
    assert audit(_published(methods, settings), _truth(), ["arrests"], K) == []


def test_planned_without_the_settings_a_method_table_gives_a_small_count_back():
    # The month's smallest other cell hides the 287(g) arrests from the month's total, but not
    # from the custodial total arrest_setting_share publishes.
    methods = _methods()
    assert _hidden(methods)[(JAN, "Non-Custodial Arrest")] == COMPLEMENTARY_LABEL
    leaks = audit(_published(methods, _settings()), _truth(), ["arrests"], K)
    assert {leak.value for leak in leaks} == {4.0}


def test_the_settings_the_setting_table_hid_stay_secret():
    # February's at-large arrests are 7: the setting table hides them, and with them the other
    # corners of a rectangle (February's custodial, January's two settings). The method table,
    # planned with those as secrets, gives none of them back, nor its own small cells.
    arrests = {**ARRESTS, (FEB, "Located"): 3, (FEB, "Non-Custodial Arrest"): 4}
    settings = _settings(arrests)
    hidden_settings = [(row["month"], row["arrest_setting"]) for row in settings.to_pylist()
                       if row[SUPPRESSION_COLUMN]]
    assert (FEB, "at-large") in hidden_settings and len(hidden_settings) == 4
    # Named as the method table's cells, with each setting in place of the method.
    secret = [(("month", "apprehension_method"), key) for key in hidden_settings]
    table = _truth(arrests).drop_columns(["arrest_setting"])
    methods = suppress(table, "arrests", ["month", "apprehension_method"], k=K,
                       coarser={"apprehension_method": SETTING.get}, coarse_secret=secret)
    assert methods.plan.unprotectable_totals == 0
    assert audit(_published(methods.table, settings), _truth(arrests), ["arrests"], K) == []
    # Planned as if the setting table had shown them, the same totals are given up as derivable.
    naive = suppress(table, "arrests", ["month", "apprehension_method"], k=K,
                     coarser={"apprehension_method": SETTING.get})
    assert naive.plan.unprotectable_totals > 0


MAR, APR = date(2026, 3, 1), date(2026, 4, 1)
# Arrests by criminality and setting. In March 1 arrest is custodial and of someone with no
# criminal record, and every at-large arrest of March is of someone with none: the other cells
# of that column are empty (a table crossing the two, arrest_setting_share by criminality,
# publishes them so).
CROSS = {
    (MAR, "Other Immigration Violator", "at-large"): 14,
    (MAR, "Convicted Criminal", "custodial"): 12,
    (MAR, "Other Immigration Violator", "custodial"): 1,
    (MAR, "Pending Criminal Charges", "custodial"): 3,
    (APR, "Other Immigration Violator", "at-large"): 30,
    (APR, "Convicted Criminal", "custodial"): 40,
    (APR, "Other Immigration Violator", "custodial"): 20,
    (APR, "Pending Criminal Charges", "custodial"): 25,
}


def _cross(counts=CROSS) -> pa.Table:
    return pa.Table.from_pylist([
        {"month": month, "criminality": criminality, "arrest_setting": setting, "arrests": n}
        for (month, criminality, setting), n in counts.items()])


def _totals(cross: pa.Table, keys) -> pa.Table:
    return cross.group_by(list(keys), use_threads=False).aggregate(
        [("arrests", "sum")]).rename_columns({"arrests_sum": "arrests"})


BREAKDOWNS = (("month", "criminality"), ("month", "arrest_setting"))


def test_two_breakdowns_planned_each_alone_give_a_small_count_back():
    # By criminality March publishes 15 arrests of people with no record (the 3 pending hidden,
    # 12 convicted beside them); by setting, 14 at-large arrests, all of people with no record.
    # 15 - 14 = 1 custodial arrest of someone with no record. Seen in public mode on a SYNTHETIC
    # warehouse (seed 5, arrest_outcomes by criminality beside it by arrest_setting).
    cross = _cross()
    published = [(suppress(_totals(cross, keys), "arrests", keys, k=K).table, keys)
                 for keys in BREAKDOWNS]
    assert {leak.value for leak in audit(published, cross, ["arrests"], K)} == {1.0}


def test_two_breakdowns_of_the_same_people_read_together_give_nothing_back():
    # Planned as one (plan_linked), each table then hides at least the rows that plan hid.
    cross = _cross()
    tables = [_totals(cross, keys) for keys in BREAKDOWNS]
    hidden = plan_linked(cross, DIMENSIONS, "arrests",
                         [LinkedTable(table, keys, "arrests")
                          for table, keys in zip(tables, BREAKDOWNS)], K)
    published = [(suppress(table, "arrests", keys, k=K, hidden_rows=rows).table, keys)
                 for table, keys, rows in zip(tables, BREAKDOWNS, hidden)]
    for (table, _), rows in zip(published, hidden):
        shown = {tuple(row[c] for c in table.column_names[:2]) for row in table.to_pylist()
                 if row[SUPPRESSION_COLUMN] is None}
        assert not shown & set(rows)
    assert audit(published, cross, ["arrests"], K) == []


DIMENSIONS = ("month", "criminality", "arrest_setting")
CONVICTED, PENDING, NEITHER = (
    "Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator")
CLASSES = (("convicted", "criminality", CONVICTED), ("pending", "criminality", PENDING),
           ("neither", "criminality", NEITHER))


def _year(changed: dict) -> dict:
    """Twelve months of arrests by criminality and setting, large but for the `changed` cells
    (a 0: no arrest, no row)."""
    counts = {}
    for m in range(1, 13):
        month = date(2025, m, 1)
        for n, criminality in enumerate((CONVICTED, PENDING, NEITHER)):
            counts[(month, criminality, "custodial")] = 60 + 7 * n + m
            counts[(month, criminality, "at-large")] = 40 + 5 * n + 2 * m
    return {key: n for key, n in {**counts, **changed}.items() if n}


def _linked_tables(cross: pa.Table) -> list[tuple[LinkedTable, tuple[str, ...]]]:
    """The tables public mode publishes of them: the month with a column per class (as
    arrest_criminality), the month by setting with the month's total beside it (as
    arrest_setting_share), each breakdown alone (as arrest_outcomes), and the cross table."""
    month = _totals(cross, ["month"])
    by_class = {(row["month"], row["criminality"]): row["arrests"]
                for row in _totals(cross, ["month", "criminality"]).to_pylist()}
    for column, _, value in CLASSES:
        month = month.append_column(column, pa.array(
            [by_class.get((m, value), 0) for m in month.column("month").to_pylist()], pa.int64()))
    setting = _totals(cross, ["month", "arrest_setting"])
    with_setting = dict(zip(month.column("month").to_pylist(), month.column("arrests").to_pylist()))
    setting = setting.append_column("arrests_with_arrest_setting", pa.array(
        [with_setting[m] for m in setting.column("month").to_pylist()], pa.int64()))
    return [
        (LinkedTable(month, ("month",), "arrests", classes=CLASSES), ("month",)),
        (LinkedTable(setting, ("month", "arrest_setting"), "arrests",
                     totals=(("arrests_with_arrest_setting", "arrest_setting"),)),
         ("month", "arrest_setting")),
        (LinkedTable(_totals(cross, BREAKDOWNS[0]), BREAKDOWNS[0], "arrests"), BREAKDOWNS[0]),
        (LinkedTable(_totals(cross, BREAKDOWNS[1]), BREAKDOWNS[1], "arrests"), BREAKDOWNS[1]),
        (LinkedTable(cross, DIMENSIONS, "arrests"), DIMENSIONS),
    ]


def _read_together(cross: pa.Table, linked, hidden) -> list:
    """Each table suppressed from the rows the joint plan hid, as a reader has it: a class
    column is a table by criminality of its own, a total column one without the setting."""
    published = []
    for (table, keys), rows in zip(linked, hidden):
        people = [c for c in table.table.column_names if c not in keys]
        shown = suppress(table.table, "arrests", list(keys), k=K, people=people,
                         hidden_rows=rows).table
        published.append((shown.select([*keys, "arrests"]), keys))
        for column, key, value in table.classes:
            published.append((pa.Table.from_pylist(
                [{"month": row["month"], key: value, "arrests": row[column]}
                 for row in shown.to_pylist()]), ("month", key)))
        for column, _ in table.totals:
            published.append((shown.select(["month", column]).rename_columns(
                ["month", "arrests"]), ("month",)))
    return published


def test_the_tables_of_the_same_arrests_hide_cells_not_the_months():
    # In June 2 custodial arrests of people with no record, and every at-large arrest is of
    # someone with no record. Planned alone, the cross table hides the 2 and a complement, but
    # the month's no-record total (a class column, a row by criminality) less the at-large
    # total (a row by setting) gives the 2 back. Planned as one, cells of the cross table are
    # hidden (with the rows publishing them), and the setting's or the class's total where
    # cells cannot protect it, never a month's total: the national table shows every month.
    june = date(2025, 6, 1)
    cross = _cross(_year({(june, NEITHER, "custodial"): 2, (june, CONVICTED, "at-large"): 0,
                          (june, PENDING, "at-large"): 0}))
    linked = _linked_tables(cross)
    alone = [[] for _ in linked]
    assert audit(_read_together(cross, linked, alone), cross, ["arrests"], K)
    hidden = plan_linked(cross, DIMENSIONS, "arrests", [t for t, _ in linked], K)
    assert hidden[0] == []
    published = _read_together(cross, linked, hidden)
    assert not any(published[0][0].column(SUPPRESSION_COLUMN).to_pylist()
                   if SUPPRESSION_COLUMN in published[0][0].column_names else [])
    assert (june, NEITHER, "custodial") in hidden[-1]
    assert audit(published, cross, ["arrests"], K) == []


def test_a_setting_the_month_totals_give_back_hides_a_setting_total_in_two_months():
    # A third setting holds 1 arrest in March and 2 in August: the month's total less its two
    # large settings gives it back whatever cells are hidden, so a setting's total is
    # unpublished in every table showing it, in March and in a second month (the year's
    # setting total would give one month from the other), and the months stay shown.
    march, august = date(2025, 3, 1), date(2025, 8, 1)
    cross = _cross(_year({(march, NEITHER, "other"): 1, (august, CONVICTED, "other"): 2}))
    linked = _linked_tables(cross)
    hidden = plan_linked(cross, DIMENSIONS, "arrests", [t for t, _ in linked], K)
    assert hidden[0] == []
    months = {key[0] for key in hidden[1]}
    assert {march, august} <= months and len(months) == 2
    assert audit(_read_together(cross, linked, hidden), cross, ["arrests"], K) == []


def test_tables_counting_other_people_are_refused():
    cross = _cross()
    wrong = _totals(cross, ["month"]).set_column(1, "arrests", pa.array([30, 116], pa.int64()))
    with pytest.raises(ValueError, match="do not count the same people"):
        plan_linked(cross, DIMENSIONS, "arrests", [LinkedTable(wrong, ("month",), "arrests")], K)
