"""A survival curve at coarser steps: between two shown steps, the stays that ended and those
censored are each 0 or at least k, and the survival at a shown step is the full curve's."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from iceledger.serving.disclosure import (
    COMPLEMENTARY_LABEL,
    SUPPRESSION_COLUMN,
    audit_curve,
    coarsen_curve,
)

K = 10


def _curve(events: dict[int, tuple[int, int]], still_held: int, group: str = "all") -> list[dict]:
    """A Kaplan-Meier curve by hand: `events[day]` = (stays ended, stays censored) that day,
    every stay's length a whole number of days; `still_held` stays outlast the curve."""
    at_risk = still_held + sum(e + c for e, c in events.values())
    survival, rows = 1.0, []
    for day in sorted(events):
        ended, censored = events[day]
        survival *= 1 - ended / at_risk
        rows.append({"group": group, "days": day, "at_risk": at_risk, "ended": ended,
                     "survival": survival})
        at_risk -= ended + censored
    return rows


def _coarsened(rows: list[dict], groups=("group",), within=None, ended_after=None):
    return coarsen_curve(pa.Table.from_pylist(rows), "days", "at_risk", "ended", list(groups), K,
                         within=within, ended_after=ended_after)


def _survival_at(rows: list[dict], group: str, day: int) -> float:
    return [r["survival"] for r in rows if r["group"] == group and r["days"] <= day][-1]


# Day 0: 12 ended; days 1-2: 11 ended, 10 censored; day 3: 10 ended; days 5-6: 5 ended, and 1
# censored beside 51 still held after the curve's last day: too few ended, so the last interval
# reaches back over day 3.
KNOWN = {0: (12, 0), 1: (5, 2), 2: (6, 8), 3: (10, 0), 5: (3, 1), 6: (2, 0)}


def test_a_known_curve_keeps_the_steps_it_must():
    rows = _curve(KNOWN, still_held=51)
    shown = _coarsened(rows)
    table = shown.table.to_pylist()
    assert shown.steps == (0, 2, 6)
    assert [r["days"] for r in table] == [0, 2, 6]
    assert [r["at_risk"] for r in table] == [100, 88, 67]
    assert [r["ended"] for r in table] == [12, 11, 15]
    assert [r["survival"] for r in table] == [_survival_at(rows, "all", d) for d in (0, 2, 6)]
    assert shown.folded == 3 and all(r[SUPPRESSION_COLUMN] is None for r in table)
    assert audit_curve(shown.table, "days", "at_risk", "ended", ["group"], K) == []
    # Day by day, the curve gives small counts away.
    full = pa.Table.from_pylist(rows).append_column(SUPPRESSION_COLUMN,
                                                    pa.nulls(len(rows), pa.string()))
    assert audit_curve(full, "days", "at_risk", "ended", ["group"], K)


@pytest.mark.parametrize("seed", range(20))
def test_no_interval_counts_fewer_than_k_and_survival_is_the_full_curves(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for group in ("a", "b", "c"):
        days = sorted(rng.choice(365, size=int(rng.integers(5, 120)), replace=False))
        events = {int(d): (int(rng.poisson(rng.uniform(0.2, 12))), int(rng.poisson(2)))
                  for d in days}
        events = {d: ec for d, ec in events.items() if sum(ec)}
        rows += _curve(events, still_held=int(rng.integers(0, 40)), group=group)
    shown = _coarsened(rows)
    assert audit_curve(shown.table, "days", "at_risk", "ended", ["group"], K) == []
    for row in shown.table.to_pylist():
        if row[SUPPRESSION_COLUMN] is None:
            assert row["days"] in shown.steps
            assert row["survival"] == _survival_at(rows, row["group"], row["days"])


def test_a_group_with_too_few_stays_is_hidden_and_never_alone():
    rows = (_curve(KNOWN, 51, "large") + _curve({0: (20, 5), 4: (15, 10)}, 10, "middle")
            + _curve({2: (3, 0), 9: (1, 1)}, 0, "small"))
    shown = _coarsened(rows).table.to_pylist()
    labels = {r["group"]: r[SUPPRESSION_COLUMN] for r in shown}
    assert labels == {"large": None, "middle": COMPLEMENTARY_LABEL, "small": f"<{K}"}
    hidden = [r for r in shown if r[SUPPRESSION_COLUMN]]
    assert all(r["at_risk"] is None and r["ended"] is None and r["survival"] is None
               for r in hidden)


def test_a_breakdown_keeps_to_the_coarser_tables_steps():
    doubled = {d: (e * 2, c * 2) for d, (e, c) in KNOWN.items()}
    rows = _curve(doubled, 90, "x") + _curve(doubled, 60, "y")
    assert _coarsened(rows).steps == (0, 2, 3, 6)
    within = (0, 2, 6)
    kept = _coarsened(rows, within=within)
    assert set(kept.steps) <= set(within)
    assert audit_curve(kept.table, "days", "at_risk", "ended", ["group"], K) == []


def test_a_curve_with_too_few_stays_is_hidden_whole():
    shown = _coarsened(_curve({0: (4, 1), 3: (2, 0)}, 2)).table.to_pylist()
    assert [r[SUPPRESSION_COLUMN] for r in shown] == [f"<{K}"]


def test_stays_ended_after_the_curve_count_like_an_interval():
    # Of the 51 stays still held after day 6, 4 ended later: a published total of ended stays
    # less the curve's gives them, so the group cannot be shown; 12 can, and then the last
    # interval's censored are the other 39.
    rows = _curve(KNOWN, still_held=51)
    total = sum(e for e, _ in KNOWN.values())
    few = _coarsened(rows, ended_after={("all",): 4}).table.to_pylist()
    assert [r[SUPPRESSION_COLUMN] for r in few] == [f"<{K}"]
    shown = _coarsened(rows, ended_after={("all",): 12})
    assert shown.steps == (0, 2, 6)
    assert audit_curve(shown.table, "days", "at_risk", "ended", ["group"], K,
                       {("all",): total + 12}) == []
    found = audit_curve(_coarsened(rows).table, "days", "at_risk", "ended", ["group"], K,
                        {("all",): total + 4})
    assert (("all",), None, "ended after the last row", 4) in found
