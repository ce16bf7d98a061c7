"""Public mode's before/after (`_shift`) metrics on the SYNTHETIC warehouse: a split date's rows go
out only when the month it cuts is safe, checked here against the full service's own spans."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from iceledger import metrics  # noqa: F401 - registers every metric
from iceledger.metrics.human_cost import default_split_dates
from iceledger.metrics.registry import MetricParams
from iceledger.serving import disclosure
from iceledger.serving.service import WarehouseService, _month_of


@pytest.fixture(scope="module")
def full(synthetic_warehouse):
    return WarehouseService(synthetic_warehouse, max_rows=10**7)


def _split_metrics(service):
    found = [m for m in service.metrics() if m.disclosure.splits and service.servable(m)]
    assert len(found) >= 10
    return found


def _matching(row, side):
    return round((row[f"{side}_share"] or 0) * row[f"{side}_records"])


def _parts(full, metric, split):
    """The split's month before and after it, per definition: (records, matching) each, read
    from the metric split at the month's first day, the split and the next month's first."""
    first = split.replace(day=1)
    following = (first + timedelta(days=31)).replace(day=1)
    cuts = (first, split, following)
    rows = full._run(metric.name, MetricParams(filters={"split": tuple(c.isoformat()
                                                                       for c in cuts)}))
    at = {(r["split_date"], r["definition"], *(r[k] for k in metric.disclosure.keys[3:])): r
          for r in rows.to_pylist()}
    parts = []
    for (cut, *cell), row in at.items():
        if cut != split:
            continue
        whole = (row["before_records"] + row["after_records"],
                 _matching(row, "before") + _matching(row, "after"))
        earlier = at.get((first, *cell))
        later = at.get((following, *cell))
        start = (earlier["before_records"], _matching(earlier, "before")) if earlier else (0, 0)
        end = (later["before_records"], _matching(later, "before")) if later else whole
        here = (row["before_records"], _matching(row, "before"))
        parts += [here[i] - start[i] for i in (0, 1)] + [end[i] - here[i] for i in (0, 1)]
    return parts


@pytest.mark.parametrize("k", [10, 2])
def test_a_published_split_cuts_its_month_into_parts_of_0_or_at_least_k(
        synthetic_warehouse, full, k):
    public = WarehouseService(synthetic_warehouse, public=True, k=k, max_rows=10**5)
    published = hidden = 0
    for metric in _split_metrics(public):
        result = public.compute(public.request(metric.name))
        unsafe = result.suppression["unsafe_splits"]
        for row in result.table.to_pylist():
            split = row["split_date"]
            if split.isoformat() in unsafe:
                hidden += 1
                assert row["suppressed"], metric.name
                assert row["before_records"] is None and row["before_share"] is None
            elif not row["suppressed"]:
                published += 1
                assert split.day != 1, metric.name
                parts = _parts(full, metric, split)
                assert parts and not any(0 < p < k for p in parts), (metric.name, split, parts)
    assert hidden
    if k == 2:
        assert published



def _arrest_tables(public, shift):
    """What a reader of public mode holds about the number of arrests, as tables the auditor
    reads: the daily table, the monthly table's totals, and each published before/after row's
    records (a side column per split date)."""
    months = public.compute(public.request("arrest_criminality")).table.to_pylist()
    published = [
        (public.compute(public.request("arrests_per_day")).table, ("date",)),
        (pa.Table.from_pylist([{"month": m["month"], "arrests": m["arrests"]} for m in months]),
         ("month",)),
    ]
    for row in shift:
        side = f"before_{row['split_date']:%Y%m%d}"
        published.append((pa.Table.from_pylist([
            {side: before, "arrests": row[f"{s}_records"]}
            for s, before in (("before", True), ("after", False))]), (side,)))
    return published


def test_daily_tables_planned_with_the_parts_let_the_splits_out_and_give_nothing_back(
        synthetic_warehouse, full, monkeypatch):
    # k=2 on the small synthetic warehouse: every month a default split cuts has a day with one
    # arrest (the day rule hid every split); planned against the parts, the daily table lets
    # the splits out, and no count under k follows from the daily table, the monthly totals and
    # the spans read together. The same spans beside a daily table planned against whole months
    # only give days back: the attack the parts plan defeats.
    k = 2
    public = WarehouseService(synthetic_warehouse, public=True, k=k, max_rows=10**5)
    served = public.compute(public.request("arrest_criminality_shift"))
    shift = [row for row in served.table.to_pylist() if not row["suppressed"]]
    splits = sorted({row["split_date"] for row in shift})
    assert len(splits) >= 2 and set(splits) <= default_split_dates()
    days = full.compute(full.request("arrests_per_day")).table.select(["date", "arrests"])
    rows = days.to_pylist()
    for split in splits:
        assert any(0 < r["arrests"] < k for r in rows
                   if r["date"].replace(day=1) == split.replace(day=1)), split
    for r in rows:
        r["month"] = r["date"].replace(day=1)
        r.update({f"before_{s:%Y%m%d}": r["date"] < s for s in splits})
    truth = pa.Table.from_pylist(rows)
    assert disclosure.audit(_arrest_tables(public, shift), truth, ["arrests"], k) == []
    months_only = WarehouseService(synthetic_warehouse, public=True, k=k, max_rows=10**5)
    monkeypatch.setattr(months_only, "_daily_coarsenings", lambda: {"date": (_month_of,)})
    leaks = disclosure.audit(_arrest_tables(months_only, shift), truth, ["arrests"], k)
    assert leaks and all(leak.value == 1 for leak in leaks)
