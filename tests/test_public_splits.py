"""Public mode's before/after (`_shift`) metrics on the SYNTHETIC warehouse: a split date's rows go
out only when the month it cuts is safe, checked here against the full service's own spans."""

from __future__ import annotations

from datetime import timedelta

import pytest

from iceledger import metrics  # noqa: F401 - registers every metric
from iceledger.metrics.registry import MetricParams
from iceledger.serving.service import WarehouseService


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

