"""Small-cell suppression for public outputs: no published number reveals a group under k people.

A table of counts is published together with its totals (the sums over any of its dimensions,
which a reader can always get by asking for a coarser breakdown). Suppressing the small cells alone
is not enough: a row total minus the published cells of that row gives the hidden cell back. So:

1. Primary suppression: every cell with 0 < count < k is hidden and shown as `<k`. Zero is published
   (a zero reveals no person).
2. Complementary suppression: in every published total ("group") that holds exactly one hidden
   cell, the smallest other cell is hidden too, until no group holds exactly one. Then an exact
   audit solves the linear system a reader has (every published group total, every published cell)
   and hides more cells until no primary cell's value is determined by it.
3. Every value column of a hidden row (shares, rates, intervals computed from the count) is hidden
   with it, and a trailing-window column (a 7-day mean) is hidden in every row whose window holds
   a hidden cell. Public facts are never hidden: text and date columns (a target's name, a rate's
   source, a period's dates) and the sourced numbers of the facts files (PUBLIC_NUMBERS: a
   target per day, funded beds, a daily rate), none of which counts a person.

A group total under k is itself a small cell, hidden wherever it is published; it is therefore not
something a reader can subtract from, and the audit does not treat it as known.

The module is pure: it sees one table, and knows nothing of the web or the warehouse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SUPPRESSION_COLUMN = "suppressed"
# Numbers that come from the project's facts files (targets, capacity, cost rates), not from
# records of people: published whatever the count beside them.
PUBLIC_NUMBERS = frozenset({"target_per_day", "funded_beds", "rate_usd_per_day"})
COMPLEMENTARY_LABEL = "complementary"

# Eigenvalues of a Gram matrix of 0/1 incidence rows below this (relative) are numerically zero.
_RANK_TOLERANCE = 1e-9
# A hidden cell is determined when the published system pins its projection to one.
_DETERMINED_TOLERANCE = 1e-6


@dataclass(frozen=True)
class CellPlan:
    """Which cells (by position) to hide, and why."""

    primary: frozenset[int]
    complementary: frozenset[int]
    # Primary cells that the published totals alone determine, whatever this table hides (only
    # possible when totals are published that this module did not protect); empty in normal use.
    unprotectable: frozenset[int]

    @property
    def hidden(self) -> frozenset[int]:
        return self.primary | self.complementary


@dataclass(frozen=True)
class SuppressedTable:
    table: pa.Table
    plan: CellPlan
    k: int


def all_margins(dimensions: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Every total a reader can obtain: the sums over each proper subset of the dimensions kept."""
    return tuple(
        kept for size in range(len(dimensions)) for kept in combinations(dimensions, size)
    )


def plan_suppression(
    counts: Sequence[float | None],
    groups: Iterable[Sequence[int]],
    k: int,
) -> CellPlan:
    """Choose the cells to hide.

    `counts[i]` is the number of people behind cell i (None: no count, never hidden). `groups`
    lists the cells whose sum is published as one total. Cells are chosen deterministically:
    the smallest positive count first, then position.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    values = [None if c is None else float(c) for c in counts]
    published = [
        tuple(members)
        for members in (tuple(i for i in g if values[i] is not None) for g in groups)
        if members and not _is_small(sum(values[i] for i in members), k)
    ]
    primary = frozenset(i for i, v in enumerate(values) if v is not None and _is_small(v, k))
    hidden = set(primary)
    groups_of: dict[int, list[int]] = {}
    for gi, members in enumerate(published):
        for i in members:
            groups_of.setdefault(i, []).append(gi)

    def cheapest(candidates: Iterable[int]) -> int | None:
        open_cells = [i for i in candidates if i not in hidden]
        if not open_cells:
            return None
        return min(open_cells, key=lambda i: (values[i] <= 0, values[i], i))

    unprotectable: set[int] = set()
    while True:
        _close_single_hidden_groups(published, hidden, cheapest)
        exposed = (_determined_cells(published, hidden) & primary) - unprotectable
        if not exposed:
            break
        stuck = []
        for cell in sorted(exposed):
            choice = cheapest(_nearest_visible_cells(cell, published, groups_of, hidden))
            if choice is None:
                stuck.append(cell)
            else:
                hidden.add(choice)
        # A cell is given up only when nothing was added this round: then everything linked to
        # it is hidden and it is still determined, so the published totals alone reveal it.
        if len(stuck) == len(exposed):
            unprotectable.update(stuck)
    return CellPlan(
        primary=primary,
        complementary=frozenset(hidden - primary),
        unprotectable=frozenset(unprotectable),
    )


def suppress(
    table: pa.Table,
    count_column: str,
    dimensions: Sequence[str],
    k: int = 10,
    totals: Sequence[Sequence[str]] | None = None,
    rolling: Mapping[str, int] | None = None,
) -> SuppressedTable:
    """Hide small cells of `table` and the cells that would reveal them.

    `dimensions` are the columns that identify a cell (a time column counts as one, first);
    `totals` names the totals published beside the table, each as the dimensions it keeps (`()`
    is the grand total); by default every total a reader could obtain. In hidden rows the count
    and every other non-dimension column become null, and the added column `suppressed` says `<k`
    (a small cell) or `complementary` (hidden so that a small cell cannot be derived).

    `rolling` names columns computed over a trailing window of rows along the first dimension
    (a 7-day mean: {"arrests_7d_avg": 7}); such a value is also hidden in every row whose window
    holds a hidden cell, since the difference of two neighbouring windows gives a cell back.
    """
    missing = [c for c in (count_column, *dimensions) if c not in table.column_names]
    if missing:
        raise ValueError(f"columns not in the table: {', '.join(missing)}")
    keys = list(zip(*(table.column(d).to_pylist() for d in dimensions))) or [()] * table.num_rows
    groups: list[list[int]] = []
    for kept in all_margins(dimensions) if totals is None else totals:
        positions = [dimensions.index(d) for d in kept]
        by_key: dict[tuple, list[int]] = {}
        for row, key in enumerate(keys):
            by_key.setdefault(tuple(key[p] for p in positions), []).append(row)
        groups.extend(by_key.values())
    plan = plan_suppression(table.column(count_column).to_pylist(), groups, k)
    windows = _windows_holding(keys, plan.hidden, rolling or {}) if dimensions else {}
    return SuppressedTable(_apply(table, dimensions, plan, k, windows), plan, k)


def rolling_windows(columns: Iterable[str]) -> dict[str, int]:
    """Trailing-window columns named by the metrics convention `<what>_<N>d_<stat>`
    (`arrests_7d_avg`, `attainment_28d_pct`): column -> window length in days."""
    found = {}
    for column in columns:
        match = re.search(r"_(\d+)d(?:_|$)", column)
        if match:
            found[column] = int(match.group(1))
    return found


def _windows_holding(
    keys: list[tuple], hidden: frozenset[int], rolling: Mapping[str, int]
) -> dict[str, set[int]]:
    """For each rolling column, the rows whose trailing window (along the first dimension, within
    the same values of the others) holds a hidden cell."""
    if not rolling or not hidden:
        return {}
    series: dict[tuple, list[int]] = {}
    for row, key in enumerate(keys):
        series.setdefault(key[1:], []).append(row)
    covered: dict[str, set[int]] = {column: set() for column in rolling}
    for rows in series.values():
        rows.sort(key=lambda r: keys[r][0])
        for position, row in enumerate(rows):
            if row in hidden:
                for column, length in rolling.items():
                    covered[column].update(rows[position : position + length])
    return covered


def _apply(
    table: pa.Table,
    dimensions: Sequence[str],
    plan: CellPlan,
    k: int,
    windows: Mapping[str, set[int]],
) -> pa.Table:
    labels = [
        f"<{k}" if i in plan.primary else COMPLEMENTARY_LABEL if i in plan.complementary else None
        for i in range(table.num_rows)
    ]
    hidden_mask = pa.array([label is not None for label in labels], pa.bool_())
    columns = []
    for name in table.column_names:
        column = table.column(name)
        if name not in dimensions and not _is_public(name, column.type):
            mask = hidden_mask
            if name in windows:
                rows = windows[name]
                mask = pa.array([i in rows for i in range(table.num_rows)], pa.bool_())
            column = pc.if_else(mask, pa.scalar(None, column.type), column)
        columns.append(column)
    names = list(table.column_names)
    if SUPPRESSION_COLUMN in names:
        raise ValueError(f"the table already has a column named {SUPPRESSION_COLUMN!r}")
    return pa.table(
        [*columns, pa.array(labels, pa.string())], names=[*names, SUPPRESSION_COLUMN]
    )


def _is_public(name: str, kind: pa.DataType) -> bool:
    return (name in PUBLIC_NUMBERS or pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_temporal(kind))


def _is_small(value: float, k: int) -> bool:
    return 0 < value < k


def _close_single_hidden_groups(published, hidden: set[int], cheapest) -> None:
    # A published total with exactly one hidden cell gives that cell away by subtraction.
    changed = True
    while changed:
        changed = False
        for members in published:
            inside = [i for i in members if i in hidden]
            if len(inside) == 1:
                choice = cheapest(members)
                if choice is not None:
                    hidden.add(choice)
                    changed = True


def _nearest_visible_cells(cell: int, published, groups_of, hidden: set[int]) -> list[int]:
    """The visible cells closest to `cell` through chains of published groups of hidden cells.

    Hiding one of them adds an unknown to the equations that pin `cell`; the nearest ones are
    tried first so that the extra hiding stays local.
    """
    seen_cells, seen_groups, frontier = {cell}, set(), [cell]
    while frontier:
        visible, next_frontier = [], []
        for hidden_cell in frontier:
            for gi in groups_of.get(hidden_cell, ()):
                if gi in seen_groups:
                    continue
                seen_groups.add(gi)
                for member in published[gi]:
                    if member not in hidden:
                        visible.append(member)
                    elif member not in seen_cells:
                        seen_cells.add(member)
                        next_frontier.append(member)
        if visible:
            return visible
        frontier = next_frontier
    return []


def _determined_cells(published, hidden: set[int]) -> set[int]:
    """Hidden cells whose value follows exactly from the published totals and cells.

    A reader knows, for each published group, the sum of its hidden cells (total minus the
    visible ones). Hidden cell j is determined iff its unit vector lies in the row space of that
    incidence matrix, i.e. iff its projection onto the row space has length one. The row space of
    A equals that of the Gram matrix A'A, which is small (hidden x hidden) and cheap to build.
    """
    order = sorted(hidden)
    if not order:
        return set()
    position = {cell: p for p, cell in enumerate(order)}
    gram = np.zeros((len(order), len(order)))
    for members in published:
        inside = [position[i] for i in members if i in hidden]
        if inside:
            gram[np.ix_(inside, inside)] += 1.0
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    scale = max(float(eigenvalues.max()), 1.0)
    basis = eigenvectors[:, eigenvalues > _RANK_TOLERANCE * scale]
    projection = (basis**2).sum(axis=1)
    return {order[p] for p in np.flatnonzero(projection > 1 - _DETERMINED_TOLERANCE)}
