"""Public mode gives no count under k back: not from one response, not from two read together.

The auditor (`disclosure.audit`) takes the attacker's side: it sets up every equation the
published tables give (a published row is the sum of the finest cells it covers; a trailing mean
the sum of its window) and solves for what they pin down. It runs here over every metric and every
breakdown public mode serves on the SYNTHETIC warehouse, alone and in pairs.
"""

from __future__ import annotations

import bisect
import itertools

import pyarrow as pa
import pytest

from iceledger import metrics  # noqa: F401 - registers every metric
from iceledger.errors import IceledgerError
from iceledger.facts import FAR_FUTURE, load_targets
from iceledger.metrics.human_cost import default_split_dates
from iceledger.metrics.registry import FISCAL_YEAR, REGISTRY, SHIFT_SUFFIX, by_fiscal_year
from iceledger.metrics.volume import fiscal_year
from iceledger.serving import disclosure
from iceledger.serving.service import (
    NOT_PUBLIC_BREAKDOWNS,
    NotPublic,
    NotServable,
    TooManyRows,
    WarehouseService,
)
from iceledger.web.state import PUBLIC_MAX_ROWS

K = 10
# Cross pairs (by=a beside by=b) are audited over their finest table (a x b) up to this size.
MAX_CROSS_CELLS = 400


@pytest.fixture(scope="module")
def services(synthetic_warehouse):
    public = WarehouseService(synthetic_warehouse, public=True, k=K, max_rows=PUBLIC_MAX_ROWS)
    full = WarehouseService(synthetic_warehouse, max_rows=10**7)
    return public, full


def _served(public: WarehouseService, name: str, by: tuple[str, ...]):
    try:
        return public.compute(public.request(name, by=by))
    except TooManyRows:
        return None


def _published(result, metric) -> tuple[pa.Table, tuple[str, ...]]:
    cells = (*result.dimensions, *(c for c in metric.disclosure.keys
                                   if c in result.table.column_names))
    return _with_differences(result.table, metric, cells), cells


def _with_differences(table: pa.Table, metric, cells) -> pa.Table:
    """The table with the differences of counts a reader can take (Disclosure.parts, nested):
    each is audited as a count of people."""
    rules = metric.disclosure
    return disclosure.with_differences(table, metric.count_column, cells, rules.parts,
                                       rules.nested)[0]


def _truth(full: WarehouseService, name: str, by: tuple[str, ...], cells) -> pa.Table:
    """The true counts, one row per finest cell (rows repeated per target kept once)."""
    table = full.compute(full.request(name, by=by)).table
    seen, keep = set(), []
    for i, key in enumerate(zip(*(table.column(c).to_pylist() for c in cells))):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return _with_differences(table.take(pa.array(keep, pa.int64())), REGISTRY[name], cells)


def _public_metrics(public):
    return [m for m in public.metrics() if m.count_column and public.servable(m)]


def test_no_response_alone_or_in_pairs_gives_a_small_count_back(services):
    public, full = services
    audited = 0
    for metric in _public_metrics(public):
        if metric.disclosure.withheld:
            with pytest.raises(NotServable, match="not served in public mode"):
                public.request(metric.name)
            continue
        leaks, count = _leaks_alone_and_in_pairs(public, full, metric)
        assert leaks == [], metric.name
        audited += count
    assert audited > 40


def _leaks_alone_and_in_pairs(public, full, metric) -> tuple[list, int]:
    """What the auditor recovers from each response of `metric` alone, each breakdown with the
    table without it, and each pair of breakdowns (over their finest table, up to
    MAX_CROSS_CELLS cells): the leaks, as (breakdowns, recovery), and the responses audited."""
    served = {(): _served(public, metric.name, ())}
    served |= {(d,): _served(public, metric.name, (d,))
               for d in metric.dimensions if d not in NOT_PUBLIC_BREAKDOWNS}
    served = {by: result for by, result in served.items() if result is not None}
    if metric.disclosure.curve:
        # A curve's rows do not sum (at_risk shrinks along them): it has its own audit.
        _audit_curve(full, metric, served)
        return [], len(served)
    suppression = served[()].suppression
    people = [*suppression["people_columns"], *suppression["protected_differences"]]
    totals = metric.disclosure.totals
    leaks = []
    for by, result in served.items():
        table, cells = _published(result, metric)
        truth = _truth(full, metric.name, by, cells)
        leaks += [(by, leak) for leak in disclosure.audit([(table, cells)], truth, people, K,
                                                           totals)]
        if by:
            coarse = _published(served[()], metric)
            leaks += [((), by, leak) for leak in disclosure.audit(
                [coarse, (table, cells)], truth, people, K, totals)]
    for a, b in itertools.combinations([by for by in served if by], 2):
        first, second = (_published(served[x], metric) for x in (a, b))
        cells = tuple(dict.fromkeys((*first[1], *second[1])))
        truth = _truth(full, metric.name, (*a, *b), cells)
        if truth.num_rows <= MAX_CROSS_CELLS:
            leaks += [(a, b, leak) for leak in disclosure.audit([first, second], truth, people,
                                                                K, totals)]
    return leaks, len(served)


def _linked_read_together(public, full, daily) -> tuple[list, pa.Table]:
    """What a reader holds of the people the monthly tables of `daily` (Disclosure.months)
    count, by month and its crossed keys (Disclosure.crossed): every such table public mode
    serves, without a breakdown and by each crossed key, with each class column read as a table
    by its key and each total column as one without its key; and the true counts of the month's
    crossed cells."""
    crossed, counted = daily.disclosure.crossed, daily.count_column
    cells: dict[tuple, int] = {}
    days = full.compute(full.request(daily.name, by=crossed)).table
    for row in days.select(["date", *crossed, counted]).to_pylist():
        key = (row["date"].replace(day=1), *(row[c] for c in crossed))
        cells[key] = cells.get(key, 0) + row[counted]
    truth = pa.Table.from_pylist([{"month": key[0], **dict(zip(crossed, key[1:])), counted: n}
                                  for key, n in cells.items() if n])
    published = []
    for name in daily.disclosure.months:
        metric = REGISTRY[name]
        rules = metric.disclosure
        for by in [(), *((d,) for d in crossed if d in metric.dimensions)]:
            keys = ("month", *by, *rules.keys)
            try:
                table = public.compute(public.request(name, by=by)).table
            except IceledgerError:
                continue
            if not set(keys) <= set(truth.column_names) or counted not in table.column_names:
                continue
            rows = table.to_pylist()
            published.append((table.select([*keys, counted]), keys))
            published += [(pa.Table.from_pylist(
                [{**{k: row[k] for k in keys}, key: value, counted: row[column]} for row in rows]),
                (*keys, key)) for column, key, value in rules.classes if key not in keys]
            published += [(pa.Table.from_pylist(
                [{**{k: row[k] for k in keys if k != key}, counted: row[column]} for row in rows]),
                tuple(k for k in keys if k != key))
                for column, of, key in rules.totals if of == counted and key in keys]
    return published, truth


def test_the_tables_counting_the_same_arrests_read_together_give_nothing_back(services):
    # A month's arrests by criminality (class columns, rows by criminality), by setting (rows, a
    # total column) and by both (arrest_setting_share by criminality) read together: planned as
    # one (disclosure.plan_linked), no cell of month x criminality x setting under K comes back.
    public, full = services
    published, truth = _linked_read_together(public, full, REGISTRY["arrests_per_day"])
    assert len(published) >= 10
    assert disclosure.audit(published, truth, ["arrests"], K) == []


@pytest.fixture(scope="module")
def seed_5_services(tmp_path_factory):
    """Public and full servers of the SYNTHETIC warehouse (seed 5) on which the pairs audit
    found arrest_outcomes by criminality and by setting giving a custodial arrest back."""
    from iceledger.sources.foia.ingest import foia_paths, ingest_foia
    from iceledger.synth.releases import generate_release
    from iceledger.warehouse import Warehouse

    root = tmp_path_factory.mktemp("seed-5-warehouse")
    generate_release(root / "files", 1_500, seed=5, fmt="parquet")
    assert ingest_foia(foia_paths([root / "files"]), Warehouse(root / "w.duckdb")).ok
    return (WarehouseService(root / "w.duckdb", public=True, k=K, max_rows=PUBLIC_MAX_ROWS),
            WarehouseService(root / "w.duckdb", max_rows=10**7))


def test_the_arrest_tables_of_seed_5_give_nothing_back(seed_5_services):
    # Planned each alone, March 2026's 15 arrests of people with no record (by criminality) less
    # 14 at-large arrests, all of people with no record (by setting), gave 1 custodial arrest of
    # someone with no record. The pairs audit of every metric on this warehouse (a few
    # minutes) gives nothing back either; here the tables counting the arrests, and
    # arrest_outcomes' breakdowns in pairs.
    public, full = seed_5_services
    published, truth = _linked_read_together(public, full, REGISTRY["arrests_per_day"])
    assert disclosure.audit(published, truth, ["arrests"], K) == []
    assert _leaks_alone_and_in_pairs(public, full, REGISTRY["arrest_outcomes"])[0] == []


def _audit_curve(full: WarehouseService, metric, served) -> None:
    """No shown interval, and no sum of the hidden groups' intervals, counts fewer than K
    stays; a breakdown's steps are the curve's without it, or fewer."""
    curve = metric.disclosure.curve
    national = set(served[()].table.column(curve.step).to_pylist())
    for by, result in served.items():
        table = result.table
        # Beside the curve, the ended stays of every length (length_of_stay's closed stays).
        name, column = curve.ended_total
        ended_total = {tuple(row[d] for d in by): row[column]
                       for row in full.compute(full.request(name, by=by)).table.to_pylist()}
        assert not disclosure.audit_curve(table, curve.step, curve.at_risk, curve.ended, by,
                                          K, ended_total), (metric.name, by)
        steps = sorted(set(table.column(curve.step).to_pylist()))
        assert set(steps) <= national, (metric.name, by)
        hidden = {tuple(row[d] for d in by) for row in table.to_pylist() if row["suppressed"]}
        if not by or not hidden:
            continue
        pooled: dict[int, list[int]] = {}
        true = full.compute(full.request(metric.name, by=by)).table.to_pylist()
        for key in hidden:
            rows = [row for row in true if tuple(row[d] for d in by) == key]
            for row, held_after in zip(rows, [r[curve.at_risk] for r in rows[1:]] + [0]):
                interval = bisect.bisect_left(steps, row[curve.step])
                left = row[curve.ended]
                sums = pooled.setdefault(interval, [0, 0])
                sums[0] += left
                sums[1] += row[curve.at_risk] - left - held_after
        assert not [c for sums in pooled.values() for c in sums if 0 < c < K], (metric.name, by)


def test_the_auditor_finds_what_the_old_rules_let_out(services):
    # Before: only the main count was hidden, so class counts went out as they were, and the
    # month's total of arrests with a setting stood beside a hidden setting's count.
    public, full = services
    truth = full.compute(full.request("arrest_setting_share")).table
    cells = ("month", "arrest_setting")
    # The old plan saw a row per month and setting, and only the grand total beside them.
    only_main = disclosure.suppress(truth.drop_columns(["arrests_with_arrest_setting"]),
                                    "arrests", cells, k=K, totals=[()]).table
    beside = only_main.append_column(
        "arrests_with_arrest_setting", truth.column("arrests_with_arrest_setting"))
    totals = REGISTRY["arrest_setting_share"].disclosure.totals
    leaks = disclosure.audit([(beside, cells)], truth, ["arrests"], K, totals)
    assert leaks
    mix = full.compute(full.request("arrest_criminality")).table
    main_only = disclosure.suppress(mix, "arrests", ["month"], k=K).table
    restored = main_only.set_column(
        main_only.schema.get_field_index("convicted"), "convicted", mix.column("convicted"))
    assert disclosure.audit([(restored, ("month",))], mix, ["convicted"], K)


def test_a_class_count_under_k_hides_its_row(services):
    public, full = services
    served = public.compute(public.request("arrest_criminality", by=["aor"])).table.to_pylist()
    true = full.compute(full.request("arrest_criminality", by=["aor"])).table.to_pylist()
    classes = ("convicted", "pending_charges", "other_immigration_violator", "criminality_unknown")
    assert any(0 < row[c] < K for row in true for c in classes)
    for shown, row in zip(served, true):
        if any(0 < row[c] < K for c in (*classes, "arrests")):
            assert shown["suppressed"] == f"<{K}"
            assert all(shown[c] is None for c in (*classes, "no_conviction_share"))


def test_public_facts_are_never_hidden(services):
    public, full = services
    served = public.compute(public.request("arrests_vs_target")).table.to_pylist()
    true = full.compute(full.request("arrests_vs_target")).table.to_pylist()
    assert any(row["suppressed"] for row in served)
    for shown, row in zip(served, true):
        assert (shown["target"], shown["target_per_day"]) == (row["target"], row["target_per_day"])


def test_public_mode_serves_fixed_periods_and_whole_breakdowns(services):
    public, _ = services
    with pytest.raises(NotPublic, match="whole record"):
        public.request("arrests_per_day", end=pytest.importorskip("datetime").date(2025, 3, 1))
    aors = public.allowed_values("arrest_criminality", "aor")
    with pytest.raises(NotPublic, match="one value"):
        public.request("arrest_criminality", filters={"aor": list(aors[:2])})
    with pytest.raises(NotPublic, match="geography is the field office"):
        public.request("arrest_criminality", by=["apprehension_state"])
    with pytest.raises(NotPublic, match="at most 1"):
        public.request("arrest_criminality", by=["aor", "arrest_setting"])
    with pytest.raises(NotPublic, match="criminality is not one"):
        public.request("arrest_criminality", filters={"criminality": ["Convicted Criminal"]})
    # A filter is a slice of the breakdown by that dimension: the same rows, hidden alike.
    sliced = public.compute(public.request("arrest_criminality", filters={"aor": [aors[0]]}))
    whole = public.compute(public.request("arrest_criminality", by=["aor"])).table
    mine = whole.filter(pa.compute.equal(whole.column("aor"), aors[0])).drop_columns(["aor"])
    assert sliced.table.to_pylist() == mine.to_pylist()


def test_a_reordered_breakdown_is_the_same_request(services):
    _, full = services
    assert full.request("arrests_per_day", by=["criminality", "aor"]) == full.request(
        "arrests_per_day", by=["aor", "criminality"])


def test_errors_are_user_errors():
    assert issubclass(NotPublic, IceledgerError)


def test_monthly_fiscal_year_and_period_tables_read_together_give_no_small_count_back(services):
    # A fiscal year's total is the sum of its months: the monthly table is planned against the
    # years the yearly table publishes and hides.
    public, full = services
    audited = 0
    for metric in _public_metrics(public):
        yearly_metric = by_fiscal_year(metric)
        if yearly_metric is None or "indicator" not in metric.disclosure.keys:
            continue  # the yearly rows count the same columns only for an indicator's shares
        try:
            monthly = public.compute(public.request(metric.name))
        except NotServable:
            continue
        yearly = public.compute(public.request(yearly_metric.name, by=(FISCAL_YEAR,)))
        period = public.compute(public.request(yearly_metric.name))
        tables = [_published(monthly, metric), _published(yearly, yearly_metric),
                  _published(period, yearly_metric)]
        truth = _truth(full, metric.name, (), tables[0][1])
        truth = truth.append_column(FISCAL_YEAR, pa.array(
            [fiscal_year(m) for m in truth.column("month").to_pylist()], pa.int64()))
        people = [*monthly.suppression["people_columns"],
                  *monthly.suppression["protected_differences"]]
        assert disclosure.audit(tables, truth, people, K) == [], metric.name
        audited += 1
    assert audited >= 4


@pytest.mark.parametrize("by", [(), ("criminality",)])
def test_the_method_table_and_the_setting_table_read_together_give_nothing_back(services, by):
    public, full = services
    methods = public.compute(public.request("arrests_by_method", by=by)).table
    settings = public.compute(public.request("arrest_setting_share", by=by)).table
    assert any(methods.column("suppressed").to_pylist())
    # The finest cells: arrests per month, method and setting (the setting table broken down by
    # method, which only the full server serves).
    truth = full.compute(full.request("arrest_setting_share",
                                      by=("apprehension_method", *by))).table
    totals = (*REGISTRY["arrests_by_method"].disclosure.totals,
              *REGISTRY["arrest_setting_share"].disclosure.totals)
    published = [(methods, ("month", *by, "apprehension_method")),
                 (settings, ("month", *by, "arrest_setting"))]
    assert disclosure.audit(published, truth, ["arrests"], K, totals) == []


def test_the_curve_is_served_at_coarser_steps_and_says_why(services):
    public, full = services
    metric = REGISTRY["length_of_stay_curve"]
    served = public.compute(public.request(metric.name))
    every_day = full.compute(full.request(metric.name)).table.to_pylist()
    shown = served.table.to_pylist()
    closed = full.compute(full.request("length_of_stay")).table.column("closed_stays")[0]
    ended_later = closed.as_py() - sum(row["ended"] for row in every_day)
    if 0 < ended_later < K:
        # The stays that ended after day 365 would be given away: the curve is hidden whole.
        assert [row["suppressed"] for row in shown] == [f"<{K}"]
    else:
        assert 1 < len(shown) < len(every_day)
        for row in shown:
            before = [r for r in every_day if r["days"] <= row["days"]]
            assert row["survival"] == before[-1]["survival"]
    caveat = disclosure.curve_caveat(K)
    assert caveat in public.caveats(metric) and caveat not in full.caveats(metric)
    assert served.suppression["coarser_steps"]["why"] == caveat


def _month_totals(table: pa.Table, time_column: str, column: str) -> dict:
    totals: dict = {}
    for row in table.select([time_column, column]).to_pylist():
        month = row[time_column].replace(day=1)
        totals[month] = totals.get(month, 0) + (row[column] or 0)
    return {month: n for month, n in totals.items() if n}


def _by_grain(service: WarehouseService) -> dict[str, pa.Table]:
    """Every servable metric counting people, by month where month is a breakdown."""
    tables = {}
    for metric in _public_metrics(service):
        by = ("month",) if "month" in metric.dimensions else ()
        try:
            tables[metric.name] = service.compute(service.request(metric.name, by=by)).table
        except IceledgerError:
            continue
    return tables


def test_each_daily_metric_names_the_monthly_metrics_counting_its_people(services):
    # Disclosure.months links a daily metric to the monthly metrics whose month totals are its
    # own, and public mode plans its days with the months those hid as secrets. The links are
    # found here from the numbers: a new daily or monthly metric counting the same people fails
    # this test until the link is declared.
    _, full = services
    tables = _by_grain(full)
    daily = [name for name, table in tables.items() if "date" in table.column_names]
    monthly = [name for name, table in tables.items()
               if "month" in table.column_names and name not in daily]
    linked = 0
    for name in daily:
        counted = REGISTRY[name].count_column
        mine = _month_totals(tables[name], "date", counted)
        found = {
            other for other in monthly
            for column in {REGISTRY[other].count_column, counted}
            if column in tables[other].column_names
            and _month_totals(tables[other], "month", column) == mine
        }
        assert set(REGISTRY[name].disclosure.months) == found, name
        linked += bool(found)
    assert linked >= 6


def _month_totals_shown(service: WarehouseService, daily, name: str) -> pa.Table | None:
    """The month totals of a daily metric's count that the public monthly table `name` shows, as
    a table the auditor reads (month, count under the daily metric's name): a month's total is
    the sum of its rows (one row, or one per setting, office, ...) when none of them is hidden,
    else unknown. None when public mode serves no such table (or its rows repeat people)."""
    metric = REGISTRY[name]
    if metric.disclosure.copies:
        return None
    by = ("month",) if "month" in metric.dimensions else ()
    try:
        result = service.compute(service.request(name, by=by))
    except IceledgerError:
        return None
    if "month" not in result.table.column_names:
        return None
    counted = daily.count_column
    column = counted if counted in result.table.column_names else metric.count_column
    totals: dict = {}
    for row in result.table.to_pylist():
        shown = totals.get(row["month"], 0)
        totals[row["month"]] = None if shown is None or row[column] is None else shown + row[column]
    return pa.Table.from_pylist([{"month": month, counted: n} for month, n in totals.items()])


def _daily_with_monthly(service: WarehouseService, daily, full_daily: pa.Table, splits):
    """What a reader of public mode holds about a daily metric's count: its daily table, the
    month totals each linked monthly table shows, the whole period's total and each published
    before/after row counting the same people (a side column per split date), as tables the
    auditor reads, with the count under the daily metric's name."""
    counted = daily.count_column
    published = [(service.compute(service.request(daily.name)).table, ("date",))]
    total = sum(full_daily.column(counted).to_pylist())
    for name in daily.disclosure.months:
        months = _month_totals_shown(service, daily, name)
        if months is not None:
            published.append((months, ("month",)))
        period = REGISTRY.get(f"{name}_period")
        if period is not None and service.servable(period):
            row = service.compute(service.request(period.name)).table.to_pylist()[0]
            if row.get(period.count_column) == total:
                published.append((pa.table({counted: [total]}), ()))
        shift = REGISTRY.get(f"{name}{SHIFT_SUFFIX}")
        if shift is None or not service.servable(shift):
            continue
        for row in service.compute(service.request(shift.name)).table.to_pylist():
            split = row["split_date"]
            if row["suppressed"] or split not in splits:
                continue
            before = sum(n for day, n in zip(full_daily.column("date").to_pylist(),
                                             full_daily.column(counted).to_pylist())
                         if day < split)
            if (row["before_records"], row["after_records"]) != (before, total - before):
                continue  # the span counts other records (those a definition can read)
            side = f"before_{split:%Y%m%d}"
            published.append((pa.Table.from_pylist([
                {side: True, counted: before}, {side: False, counted: total - before}]), (side,)))
    return published


@pytest.mark.parametrize("k", [10, 2])
def test_daily_monthly_period_and_split_tables_read_together_give_nothing_back(
        synthetic_warehouse, services, k):
    # A monthly table hides a month beside a small one; the daily table keeps it hidden (its
    # months as secrets), and the monthly table is planned against each split's whole months
    # before and after the month it cuts, so the spans, the period total, the daily and the
    # monthly tables read together give no month and no day under k back.
    _, full = services
    public = services[0] if k == K else WarehouseService(
        synthetic_warehouse, public=True, k=k, max_rows=PUBLIC_MAX_ROWS)
    splits = sorted(default_split_dates())
    audited = spans = 0
    for daily in _public_metrics(public):
        if not daily.disclosure.months:
            continue
        truth = full.compute(full.request(daily.name)).table
        if "target" in truth.column_names:
            continue  # one row per target in force: the days repeat
        rows = truth.select(["date", daily.count_column]).to_pylist()
        for row in rows:
            row["month"] = row["date"].replace(day=1)
            row.update({f"before_{s:%Y%m%d}": row["date"] < s for s in splits})
        truth = pa.Table.from_pylist(rows)
        published = _daily_with_monthly(public, daily, truth, splits)
        assert len(published) >= 2, daily.name  # a monthly table beside the daily one
        spans += sum(1 for _, keys in published if keys and keys[0].startswith("before_"))
        assert disclosure.audit(published, truth, [daily.count_column], k) == [], (daily.name, k)
        # Each month the monthly tables hid and none published keeps a day hidden.
        monthly = [table.to_pylist() for table, keys in published if keys == ("month",)]
        secret = ({row["month"] for rows in monthly for row in rows
                   if row[daily.count_column] is None}
                  - {row["month"] for rows in monthly for row in rows
                     if row[daily.count_column] is not None})
        with_hidden_day = {row["date"].replace(day=1)
                           for row in published[0][0].to_pylist() if row["suppressed"]}
        assert secret <= with_hidden_day, (daily.name, k)
        audited += 1
    assert audited >= 5
    if k == 2:
        assert spans


@pytest.mark.parametrize("k", [10, 20, 40, 80])
def test_the_monthly_tables_counting_the_same_people_read_together_give_nothing_back(
        synthetic_warehouse, services, k):
    # Each monthly table hides the months its own class counts make small, with complements
    # beside them: planned alone, two tables could hide different complements beside one small
    # month, and read together with the period's total publish every month but the small one.
    # Planned with the months a plan of their shared totals alone hides as secrets
    # (disclosure.shared_total_secrets), they give no month back. Larger k hides more of the
    # small SYNTHETIC warehouse.
    _, full = services
    public = services[0] if k == K else WarehouseService(
        synthetic_warehouse, public=True, k=k, max_rows=PUBLIC_MAX_ROWS)
    audited = 0
    for daily in _public_metrics(public):
        days = full.compute(full.request(daily.name)).table
        if not daily.disclosure.months or "target" in days.column_names:
            continue  # no monthly tables; or one row per target in force, the days repeat
        counted = daily.count_column
        truth = pa.Table.from_pylist([{"month": month, counted: n} for month, n in
                                      _month_totals(days, "date", counted).items()])
        shown = [table for name in daily.disclosure.months
                 if (table := _month_totals_shown(public, daily, name)) is not None]
        if len(shown) < 2:
            continue
        period = pa.table({counted: [sum(truth.column(counted).to_pylist())]})
        published = [*((table, ("month",)) for table in shown), (period, ())]
        assert disclosure.audit(published, truth, [counted], k) == [], (daily.name, k)
        audited += 1
    assert audited >= 3


def test_target_stretches_beside_the_daily_arrests_give_nothing_back(services):
    # target_attainment's rows are the stretches of each month under each target: parts of
    # months (a target starting on 2025-05-21 cuts May) that the daily arrests add up to. The
    # targets' start dates are planned split dates, so the daily table is planned against those
    # parts: read together, the stretches and the days give no day under k back.
    public, full = services
    days = full.compute(full.request("arrests_per_day")).table.select(["date", "arrests"])
    rows = public.compute(public.request("target_attainment")).table.to_pylist()
    targets = {t.target_id: t for t in load_targets()}
    names = sorted({row["target"] for row in rows})

    def stretch(name: str, day):
        target = targets[name]
        inside = target.effective_from <= day <= (target.effective_to or FAR_FUTURE)
        return day.replace(day=1) if inside else None

    truth_rows = [
        {**day, **{f"under_{i}": stretch(name, day["date"]) for i, name in enumerate(names)}}
        for day in days.to_pylist()]
    truth = pa.Table.from_pylist(truth_rows)
    published = [(public.compute(public.request("arrests_per_day")).table, ("date",))]
    for i, name in enumerate(names):
        under = f"under_{i}"
        sums: dict = {}
        for day in truth_rows:
            sums[day[under]] = sums.get(day[under], 0) + day["arrests"]
        shown = [{under: row["month"], "arrests": row["arrests"]}
                 for row in rows if row["target"] == name]
        # Each visible row is the sum of the days under its target in its month.
        assert all(row["arrests"] == sums.get(row[under], 0) for row in shown
                   if row["arrests"] is not None)
        published.append((pa.Table.from_pylist(shown), (under,)))
    assert len(published) > 2
    assert any(published[0][0].column("suppressed").to_pylist())  # days hidden to protect
    assert disclosure.audit(published, truth, ["arrests"], K) == []
