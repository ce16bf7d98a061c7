"""Small-cell suppression for public outputs: no published number reveals a group under k people.

A table of counts is published together with its totals (the sums over any of its dimensions,
which a reader can always get by asking for a coarser breakdown). Suppressing the small cells alone
is not enough: a row total minus the published cells of that row gives the hidden cell back. So:

1. Primary suppression: a row is hidden, shown as `<k`, when any column counting people in it is
   under k and above zero (`arrests 13` beside `convicted 6`: the row goes, not only the 6). Zero
   is published (a zero reveals no person).
2. Complementary suppression: in every published total ("group") that holds exactly one hidden
   cell, the smallest other cell is hidden too, until no group holds exactly one. Then an exact
   audit solves the linear system a reader has (every published group total, every published cell)
   and hides more cells until no small cell's value, and no small total's value, is determined.
3. Every other column of a hidden row is hidden with it (shares, rates, intervals computed from its
   counts), and a trailing-window column (a 7-day mean) is hidden in every row whose window holds
   a hidden cell. Public facts are never hidden: those a metric declares (Disclosure.facts), text
   and date columns (a target's name, a rate's source, a period's dates) and the sourced numbers
   of the facts files (PUBLIC_NUMBERS: a target per day, funded beds, a daily rate), none of which
   counts a person.

A survival curve (rows of steps, each with the stays at risk at its start) is not a table of
counts that sum: two neighbouring rows differ by the people who left between them. It is shown at
coarser steps instead (coarsen_curve), each closing an interval in which the people who ended and
those censored are each 0 or at least k.

A total is published only when no column of it counts fewer than k people; one that does (or one
that a coarser table hid) is a secret: never treated as known, and itself protected, so that no
combination of what is published gives it back.

The module is pure: it sees one table, and knows nothing of the web or the warehouse.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import combinations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SUPPRESSION_COLUMN = "suppressed"
# A coarsening of a dimension's values (a day to its month) whose totals are published too.
Coarsening = Callable[[object], object]
# What a coarsening maps a value to when no published total of it holds that value (the month a
# split date cuts, beside the whole months before and after it).
NOT_SUMMED = object()
# Numbers that come from the project's facts files (targets, capacity, cost rates), not from
# records of people: published whatever the count beside them.
PUBLIC_NUMBERS = frozenset({"target_per_day", "funded_beds", "rate_usd_per_day"})
COMPLEMENTARY_LABEL = "complementary"
# The label of a before/after row hidden because its split date cuts a month with a part or a day
# under k (unsafe_splits): the row's own counts may be large.
SPLIT_LABEL = "month part"


def split_label(k: int) -> str:
    return f"{SPLIT_LABEL} <{k}"

# Eigenvalues of a Gram matrix of 0/1 incidence rows below this (relative) are numerically zero.
_RANK_TOLERANCE = 1e-9
# A hidden cell is determined when the published system pins its projection to one.
_DETERMINED_TOLERANCE = 1e-6
# The exact audit's cost grows with the cube of the hidden cells; a table needing more hidden
# cells than this is hidden whole rather than audited.
MAX_AUDITED_CELLS = 1_200
# How many of the cheapest sums plan_linked_rows tries, each an exact test, for one that alone
# leaves a determined value undetermined.
LOOKAHEAD = 12


@dataclass(frozen=True)
class CellPlan:
    """Which cells (by position) to hide, and why."""

    primary: frozenset[int]
    complementary: frozenset[int]
    # Primary cells that the published totals alone determine, whatever this table hides (only
    # possible when totals are published that this module did not protect); empty in normal use.
    unprotectable: frozenset[int]
    # Small or secret totals that the published totals alone determine (normally none).
    unprotectable_totals: int = 0

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


def published_totals(
    dimensions: Sequence[str], unsummed: Sequence[str]
) -> tuple[tuple[str, ...], ...] | None:
    """The totals a reader can obtain of a table identified by `dimensions`: every margin (None,
    as `suppress` reads it) but those adding up the values of an `unsummed` key (the arrests,
    book-ins and removals of the same people), which no table publishes."""
    kept_always = set(unsummed) & set(dimensions)
    if not kept_always:
        return None
    return tuple(kept for kept in all_margins(dimensions) if kept_always <= set(kept))


def plan_suppression(
    counts: Sequence[float | None],
    groups: Iterable[Sequence[int]],
    k: int,
    *,
    small: Iterable[int] | None = None,
    secret: Iterable[Sequence[int]] = (),
    hidden_with: Iterable[int] = (),
    rank: Sequence[int] | None = None,
) -> CellPlan:
    """Choose the cells to hide.

    `counts[i]` is the number of people behind cell i (None: no count, never hidden). `groups`
    lists the cells whose sum is published as one total; a group whose sum is small is not
    published, and is protected like a small cell. `small` overrides which cells are small (a cell
    with a small count in another column); `secret` lists further groups whose sums are never
    published and must not be derivable (totals a coarser table hid); `hidden_with` lists cells
    hidden from the start, beside the small ones (complementary: those of a secret total that
    each of its rows publishes). Cells are chosen deterministically: the lowest `rank` first (by
    default all alike), then the smallest positive count, then position.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    values = [None if c is None else float(c) for c in counts]
    published: list[tuple[int, ...]] = []
    targets: list[tuple[int, ...]] = []
    for members in (tuple(i for i in g if values[i] is not None) for g in groups):
        if not members:
            continue
        if _is_small(sum(values[i] for i in members), k):
            targets.append(members)
        else:
            published.append(members)
    secret_groups = [tuple(i for i in g if values[i] is not None) for g in secret]
    targets.extend(g for g in secret_groups if g)
    if small is None:
        small = (i for i, v in enumerate(values) if v is not None and _is_small(v, k))
    primary = frozenset(i for i in small if values[i] is not None)
    targets = [(i,) for i in sorted(primary)] + targets
    hidden = {*primary, *(i for i in hidden_with if values[i] is not None)}
    groups_of: dict[int, list[int]] = {}
    for gi, members in enumerate(published):
        for i in members:
            groups_of.setdefault(i, []).append(gi)

    def cheapest(candidates: Iterable[int]) -> int | None:
        open_cells = [i for i in candidates if i not in hidden]
        if not open_cells:
            return None
        return min(open_cells,
                   key=lambda i: (rank[i] if rank else 0, values[i] <= 0, values[i], i))

    given_up: set[tuple[int, ...]] = set()
    counted = {i for i, v in enumerate(values) if v is not None}
    if len(counted) <= MAX_AUDITED_CELLS:
        # What the published totals alone determine stays determined whatever is hidden (a
        # category too rare overall): hiding cells for it would only empty the table.
        given_up.update(_determined_targets(published, counted, targets))
    while True:
        _close_single_hidden_groups(published, hidden, cheapest)
        if len(hidden) > MAX_AUDITED_CELLS:
            hidden.update(i for i, v in enumerate(values) if v is not None)
            break
        exposed = [t for t in _determined_targets(published, hidden, targets) if t not in given_up]
        if not exposed:
            break
        stuck = []
        for target in exposed:
            # A total with a visible member is closed by hiding one of them; a hidden one, by
            # hiding a cell linked to it through the published totals (ranked cells: whichever
            # ranks lower).
            choice = cheapest(target)
            if choice is None or rank:
                choice = cheapest([
                    *target, *(c for cell in target if cell in hidden
                               for c in _nearest_visible_cells(cell, published, groups_of, hidden))
                ])
            if choice is None:
                stuck.append(target)
            else:
                hidden.add(choice)
        # A target is given up only when nothing was added this round: then everything linked to
        # it is hidden and it is still determined, so the published totals alone reveal it.
        if len(stuck) == len(exposed):
            given_up.update(stuck)
    return CellPlan(
        primary=primary,
        complementary=frozenset(hidden - primary),
        unprotectable=frozenset(i for (i, *rest) in given_up if not rest and i in primary),
        unprotectable_totals=sum(1 for t in given_up if len(t) > 1 or t[0] not in primary),
    )


def suppress(
    table: pa.Table,
    count_column: str,
    dimensions: Sequence[str],
    k: int = 10,
    totals: Sequence[Sequence[str]] | None = None,
    rolling: Mapping[str, int] | None = None,
    *,
    people: Sequence[str] = (),
    facts: Sequence[str] = (),
    secret: Iterable[tuple[Sequence[str], tuple]] = (),
    coarser: Mapping[str, Coarsening | Sequence[Coarsening]] | None = None,
    coarse_secret: Iterable[tuple[Sequence[str], tuple]] = (),
    copies_over: Sequence[str] = (),
    secret_in_rows: Iterable[tuple[Sequence[str], tuple]] = (),
    hidden_rows: Iterable[tuple] = (),
) -> SuppressedTable:
    """Hide small cells of `table` and the cells that would reveal them.

    `dimensions` are the columns that identify a cell (a time column counts as one, first); rows
    sharing them are copies of one cell (a day shown once per target in force) and are hidden
    together. `totals` names the totals published beside the table, each as the dimensions it
    keeps (`()` is the grand total); by default every total a reader could obtain. In hidden rows
    the count and every other column but the dimensions and `facts` become null, and the added
    column `suppressed` says `<k` (a small cell) or `complementary` (hidden so that a small cell
    cannot be derived).

    `people` names the other columns counting people (a class count beside the total): a row with
    a small one is hidden, and a total with a small one is a secret. `secret` names totals a
    coarser table hid, each as (dimensions kept, their values): they must stay underivable.
    `coarser` maps a dimension to a coarsening (a day to its month), or to several (a day to its
    month, and to its part of a month cut by a split date), whose totals are published too (a
    value a coarsening maps to NOT_SUMMED is in none of its totals); `coarse_secret` names those
    of the first coarsening (the coarser grain: a day's month, a month's fiscal year) that the
    coarser grain's table hid, each as (dimensions kept, their values) with a coarsened
    dimension's value coarsened: secrets.
    `copies_over` names dimensions whose values may count the same people twice (one row per
    target in force over the same days): a row repeating a hidden row's counts, with the other
    dimensions equal, is hidden with it.
    `secret_in_rows` names secrets that each of their rows publishes (a column holding the
    month's total beside each setting's count): every row of them is hidden.
    `hidden_rows` names rows (their values of `dimensions`) hidden from the start beside the small
    ones: those a plan of the tables counting the same people hid (plan_linked).

    `rolling` names columns computed over a trailing window of rows along the first dimension
    (a 7-day mean: {"arrests_7d_avg": 7}); such a value is also hidden in every row whose window
    holds a hidden cell, since the difference of two neighbouring windows gives a cell back.
    """
    counted = [count_column, *(c for c in people if c != count_column)]
    missing = [c for c in (*counted, *dimensions) if c not in table.column_names]
    if missing:
        raise ValueError(f"columns not in the table: {', '.join(missing)}")
    row_keys = (
        list(zip(*(table.column(d).to_pylist() for d in dimensions))) or [()] * table.num_rows
    )
    cell_of: dict[tuple, int] = {}
    for key in row_keys:
        cell_of.setdefault(key, len(cell_of))
    keys = list(cell_of)
    first_row = {cell_of[key]: row for row, key in reversed(list(enumerate(row_keys)))}
    columns = {c: table.column(c).to_pylist() for c in counted}
    values = {c: [columns[c][first_row[i]] for i in range(len(keys))] for c in counted}
    small = [
        i for i in range(len(keys)) if any(_is_small(values[c][i] or 0, k) for c in counted)
    ]
    coarsenings = [
        (d, coarsen, grain == 0) for d, each in (coarser or {}).items() if d in dimensions
        for grain, coarsen in enumerate(each if isinstance(each, Sequence) else (each,))
    ]
    published: list[list[int]] = []
    secret_groups: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    hidden_totals = {(tuple(kept), tuple(value)) for kept, value in secret}
    hidden_coarse = {frozenset(zip(kept, value, strict=True)) for kept, value in coarse_secret}
    for kept in all_margins(dimensions) if totals is None else totals:
        variants = [(tuple(kept), {}, False)]
        variants += [((*kept, d), {d: coarsen}, grain)
                     for d, coarsen, grain in coarsenings if d not in kept]
        for named, maps, grain in variants:
            for group_key, members in _groups(keys, dimensions, named, maps).items():
                if NOT_SUMMED in group_key:
                    continue
                sums = [sum(values[c][i] or 0 for i in members) for c in counted]
                if not maps and (named, group_key) in hidden_totals:
                    continue  # a secret, added below (a coarsened total is none: a month's
                    # total is not the day that begins it)
                if grain and frozenset(zip(named, group_key)) in hidden_coarse:
                    # A secret, never published through another coarsening giving the same
                    # cells (the part of a month no split date cuts is the month).
                    secret_groups.append(members)
                    seen.add(tuple(members))
                    continue
                if tuple(members) in seen:
                    continue  # two coarsenings giving one total (a month no split cuts)
                seen.add(tuple(members))
                if any(_is_small(v, k) for v in sums[1:]):
                    secret_groups.append(members)
                else:
                    published.append(members)
    for kept in {kept for kept, _ in hidden_totals if set(kept) <= set(dimensions)}:
        by_key = _groups(keys, dimensions, kept, {})
        secret_groups.extend(
            by_key[value] for named, value in hidden_totals if named == kept and value in by_key
        )
    in_rows = {(tuple(kept), tuple(value)) for kept, value in secret_in_rows}
    whole_rows = [
        cell for kept in {kept for kept, _ in in_rows}
        for value, members in _groups(keys, dimensions, kept, {}).items()
        if (kept, value) in in_rows for cell in members
    ]
    whole_rows += [cell_of[tuple(key)] for key in hidden_rows if tuple(key) in cell_of]
    plan = plan_suppression(values[count_column], published, k, small=small,
                            secret=secret_groups, hidden_with=whole_rows)
    if copies_over:
        others = [p for p, d in enumerate(dimensions) if d not in copies_over]
        plan = _hide_copies(plan, [tuple(key[p] for p in others) for key in keys], values)
    windows = _windows_holding(keys, plan.hidden, rolling or {}) if dimensions else {}
    row_plan = CellPlan(
        primary=frozenset(r for r, key in enumerate(row_keys) if cell_of[key] in plan.primary),
        complementary=frozenset(
            r for r, key in enumerate(row_keys) if cell_of[key] in plan.complementary
        ),
        unprotectable=frozenset(
            r for r, key in enumerate(row_keys) if cell_of[key] in plan.unprotectable
        ),
        unprotectable_totals=plan.unprotectable_totals,
    )
    row_windows = {
        column: {r for r, key in enumerate(row_keys) if cell_of[key] in cells}
        for column, cells in windows.items()
    }
    kept_columns = {*dimensions, *facts}
    return SuppressedTable(_apply(table, kept_columns, row_plan, k, row_windows), row_plan, k)


def _groups(
    keys: list[tuple], dimensions: Sequence[str], kept: Sequence[str], maps: Mapping
) -> dict[tuple, list[int]]:
    positions = [dimensions.index(d) for d in kept]
    by_key: dict[tuple, list[int]] = {}
    for cell, key in enumerate(keys):
        group_key = tuple(
            maps[d](key[p]) if d in maps else key[p] for d, p in zip(kept, positions)
        )
        by_key.setdefault(group_key, []).append(cell)
    return by_key


def _hide_copies(plan: CellPlan, others: list[tuple], values: Mapping[str, list]) -> CellPlan:
    """Hide every cell repeating a hidden cell's counts at the same `others` key."""
    counts = list(zip(*values.values()))
    hidden_at = {(others[i], counts[i]) for i in plan.hidden}
    copies = {
        i for i in range(len(others))
        if i not in plan.hidden and (others[i], counts[i]) in hidden_at and any(counts[i])
    }
    if not copies:
        return plan
    return CellPlan(plan.primary, plan.complementary | copies, plan.unprotectable,
                    plan.unprotectable_totals)


def shared_total_secrets(
    table: pa.Table,
    count_column: str,
    dimensions: Sequence[str],
    k: int,
    *,
    coarser: Mapping[str, Coarsening | Sequence[Coarsening]] | None = None,
    secret: Iterable[tuple[Sequence[str], tuple]] = (),
) -> list[tuple[tuple[str, ...], tuple]]:
    """The totals of `count_column` over `dimensions` that a plan of those totals alone hides,
    as `suppress` takes secrets: (dimensions kept, their values).

    Tables that break the same people down differently (a month's arrests by criminality, by
    setting, by outcome) each publish these totals, or sums of them. Planned alone, each hides
    its own complement beside a small month (one June, another March), and read together they
    publish every month but the small one, which the period's total then gives back. Planned
    with these as secrets, every such table hides the same months beside a small one: the plan
    reads only the shared totals, so it is the same in each table. `coarser` and `secret` are
    those of the totals themselves (the fiscal years and split spans beside the months; the
    months the national totals hid, for a breakdown)."""
    dimensions = tuple(dict.fromkeys(dimensions))
    totals = table.group_by(list(dimensions), use_threads=False).aggregate(
        [(count_column, "sum")]).rename_columns({f"{count_column}_sum": count_column})
    planned = suppress(totals, count_column, dimensions, k, coarser=coarser, secret=secret)
    return [(dimensions, tuple(row[d] for d in dimensions))
            for row in planned.table.select([*dimensions, SUPPRESSION_COLUMN]).to_pylist()
            if row[SUPPRESSION_COLUMN] is not None]


@dataclass(frozen=True)
class LinkedTable:
    """A published table whose rows count the people of a finest table's cells (the same arrests
    by month, by month and criminality, by month and setting).

    `keys` identify a row, each a column of the finest table; a row's `count_column` is the sum
    of the finest cells its keys match. `classes` names columns counting one value of a key
    (`convicted`: the row's arrests whose criminality is "Convicted Criminal"), as (column, key,
    value); `totals` names columns counting the row's people over every non-null value of one
    key (a month's arrests with a setting beside each setting's), as (column, key). `people`
    names the other columns counting people (the arrests removed within 90 days): a row with one
    under k is hidden whatever the other tables do."""

    table: pa.Table
    keys: tuple[str, ...]
    count_column: str
    classes: tuple[tuple[str, str, object], ...] = ()
    totals: tuple[tuple[str, str], ...] = ()
    people: tuple[str, ...] = ()


def plan_linked(
    finest: pa.Table, dimensions: Sequence[str], count_column: str,
    linked: Sequence[LinkedTable], k: int,
) -> list[list[tuple]]:
    """The rows to hide in each of `linked`, tables counting the people of `finest` (a row per
    combination of `dimensions`, the time column first; one without a row counts no one),
    planned as one so that no count under k is given away by reading them together: for each
    table, the keys of its hidden rows.

    Planned each alone, two breakdowns of the same people (by criminality, by setting) each
    protect only their own rows: a month's 15 arrests of people with no record, less its 14
    at-large arrests all of people with no record, give 1 custodial arrest of someone with no
    record. Here every value a row publishes is a sum of finest cells, a row is hidden whole (as
    the tables hide it), a sum is published while any table shows a row publishing it, and the
    totals over the whole record (each margin without the time column) are published unless
    small (plan_linked_rows)."""
    dimensions = tuple(dimensions)
    # A cell counting no one is left out: a reader knows it is empty (a table crossing the keys
    # has no row for it, or a zero), so it hides nothing.
    counted = [(key, float(value)) for *key, value in zip(
        *(finest.column(d).to_pylist() for d in (*dimensions, count_column))) if value]
    keys = [tuple(key) for key, _ in counted]
    values = [value for _, value in counted]

    def cells(match: Mapping[str, object], not_null: str | None = None) -> tuple[int, ...]:
        at = {dimensions.index(d): v for d, v in match.items()}
        return tuple(i for i, key in enumerate(keys)
                     if all(key[p] == v for p, v in at.items())
                     and (not_null is None or key[dimensions.index(not_null)] is not None))

    rows: list[list[tuple[int, ...]]] = []
    small: set[int] = set()
    coarseness: list[int] = []
    owner: list[tuple[int, tuple]] = []
    for t, table in enumerate(linked):
        missing = [d for d in table.keys if d not in dimensions]
        if missing:
            raise ValueError(f"keys not in the finest table: {', '.join(missing)}")
        for r, row in enumerate(table.table.to_pylist()):
            match = {d: row[d] for d in table.keys}
            sums = [(table.count_column, cells(match))]
            sums += [(column, cells({**match, key: value}))
                     for column, key, value in table.classes]
            sums += [(column, cells({d: v for d, v in match.items() if d != key}, key))
                     for column, key in table.totals]
            for column, members in sums:
                if float(row[column] or 0) != sum(values[i] for i in members):
                    raise ValueError(
                        f"{column} of row {match} is not the sum of the finest cells it covers: "
                        "the tables do not count the same people")
            counts = [row[c] for c in (*(c for c, _ in sums), *table.people)]
            if any(_is_small(float(n or 0), k) for n in counts):
                small.add(len(rows))
            rows.append([members for _, members in sums if members])
            coarseness.append(len(dimensions) - len(table.keys))
            owner.append((t, tuple(row[d] for d in table.keys)))
    margins = [members for kept in all_margins(dimensions[1:])
               for members in _groups(keys, dimensions, kept, {}).values()]
    hidden = plan_linked_rows(values, rows, k, small=small, margins=margins,
                              coarseness=coarseness)
    found: list[list[tuple]] = [[] for _ in linked]
    for r in sorted(hidden):
        t, key = owner[r]
        found[t].append(key)
    return found


def plan_linked_rows(
    values: Sequence[float],
    rows: Sequence[Sequence[Sequence[int]]],
    k: int,
    *,
    small: Iterable[int] = (),
    margins: Iterable[Sequence[int]] = (),
    coarseness: Sequence[int] | None = None,
) -> frozenset[int]:
    """Choose the rows to hide, the unit the tables hide, of tables publishing sums of the same
    cells: `rows[r]` lists the sums (each the cells it adds) row r publishes, all hidden with it;
    `small` the rows hidden from the start; `margins` sums published whatever the rows (the
    totals over the whole record), unless small; `coarseness[r]` how many of the cells' keys row
    r leaves free (a month's total 2, a month's at-large arrests 1, a cell 0). A sum is published
    while any row publishing it is shown; a cell is known when a shown row publishes it alone.
    Every cell or sum under k (and above 0) must stay underivable from what is published.

    First the sums: a value that stays determined with every cell unknown (a month's tiny
    "other" setting, its total less its two large settings) is protected only by unpublishing a
    sum of several cells, hiding every shown row publishing it. Among the sums that pin it (a
    least-squares combination of them giving it), the cheapest that alone leaves it
    undetermined is chosen, failing one the cheapest, which is then kept underivable itself, so
    that the next choices complete the pattern (the setting's total in a second month). The
    cheapest is the one whose coarsest shown publishing row is finest (a month's total, which a
    national chart shows, goes last; a row already hidden costs nothing), then with the fewest
    shown publishing rows over its weight in the combination (the target's own month first).
    Then the cells: plan_suppression, given the sums still published, the unpublished
    ones as secrets and the unknown cells as hidden, chooses the cells to hide, and every row
    publishing one alone is hidden. Both repeat until the exact test finds nothing; a small
    value the margins alone determine is given up (CellPlan.unprotectable's case)."""
    values = [float(v) for v in values]
    publishers: dict[tuple[int, ...], list[int]] = {}
    for r, sums in enumerate(rows):
        for members in sums:
            publishers.setdefault(tuple(sorted(members)), []).append(r)
    whole_record = {tuple(sorted(m)) for m in margins if m}
    every = {*publishers, *whole_record}

    def total(group: tuple[int, ...]) -> float:
        return sum(values[i] for i in group)

    fixed = {g for g in whole_record if not _is_small(total(g), k)}
    targets = sorted({*(g for g in every if _is_small(total(g), k)),
                      *((i,) for i, v in enumerate(values) if _is_small(v, k))})
    coarseness = coarseness or [0] * len(rows)
    hidden = set(small)

    def published(hidden_rows: set[int], cells: bool = True) -> list[tuple[int, ...]]:
        shown = {g for g, by in publishers.items() if any(r not in hidden_rows for r in by)}
        return [g for g in shown | fixed if cells or len(g) > 1]

    def unknown_cells(groups) -> set[int]:
        known = {g[0] for g in groups if len(g) == 1}
        return {i for i in range(len(values)) if i not in known}

    def exposed(hidden_rows: set[int], among, cells: bool = True) -> list[tuple[int, ...]]:
        groups = published(hidden_rows, cells)
        return _determined_targets(groups, unknown_cells(groups), among)

    def pinning(target: tuple[int, ...]) -> dict[tuple[int, ...], float]:
        """The sums of several cells a reader combines to get `target` with no cell known, each
        with its weight in the least-squares combination."""
        equations = published(hidden, cells=False)
        incidence = np.zeros((len(values), len(equations)))
        for e, g in enumerate(equations):
            incidence[list(g), e] = 1.0
        wanted = np.zeros(len(values))
        wanted[list(target)] = 1.0
        weights = np.linalg.lstsq(incidence, wanted, rcond=None)[0]
        return {g: abs(float(w)) for g, w in zip(equations, weights)
                if abs(w) > _DETERMINED_TOLERANCE}

    def cost(group: tuple[int, ...], weight: float) -> tuple:
        shown = [coarseness[r] for r in publishers[group] if r not in hidden]
        return (max(shown), len(shown) / weight, total(group), group) if shown else None

    given_up = set(exposed(set(range(len(rows))), targets))
    while True:
        while found := [t for t in exposed(hidden, targets, cells=False) if t not in given_up]:
            target = found[0]
            pins = pinning(target)
            candidates = sorted((g for g in pins if g not in fixed and cost(g, pins[g])),
                                key=lambda g: cost(g, pins[g]))
            if not candidates:
                given_up.add(target)
                continue
            choice = next((g for g in candidates[:LOOKAHEAD]
                           if not exposed(hidden | set(publishers[g]), [target], cells=False)),
                          None)
            if choice is None:
                choice = candidates[0]
                targets.append(choice)
            hidden.update(publishers[choice])
        found = [t for t in exposed(hidden, targets) if t not in given_up]
        if not found:
            break
        groups = published(hidden)
        # A cell a coarser row publishes alone (a month's convicted arrests, all custodial) is
        # hidden last.
        rank = [max((coarseness[r] for r in publishers.get((i,), ()) if r not in hidden),
                    default=0) for i in range(len(values))]
        cells = plan_suppression(
            values, [g for g in groups if len(g) > 1], k,
            secret=[g for g in every - set(groups) if len(g) > 1],
            hidden_with=unknown_cells(groups), rank=rank).hidden
        more = {r for i in cells for r in publishers.get((i,), ()) if r not in hidden}
        if not more:
            given_up.update(found)
        hidden |= more
    return frozenset(hidden)


def with_differences(
    table: pa.Table,
    count_column: str,
    cells: Sequence[str],
    parts: Sequence[Sequence[str]] = (),
    nested: Sequence[tuple[str, str, str]] = (),
) -> tuple[pa.Table, tuple[str, ...]]:
    """`table` with a column for each difference of its counts that counts people, and their
    names: a reader subtracts them as easily as reading a cell, so they are planned and audited
    as counts (and dropped before anything is published).

    `parts` lists (whole, *parts) columns of one row: `<whole>_minus_<parts>` is the whole minus
    its parts. `nested` lists (key, narrower, wider): on a row whose `key` is `narrower`,
    `wider_<count>_minus_<count>_by_<key>` is the count of the row whose `key` is `wider` and
    whose other `cells` are equal, minus this row's count (null on other rows, or with no such
    row). A null operand gives a null difference (a hidden value subtracts to nothing).
    """
    added: list[str] = []
    for whole, *members in parts:
        difference = table.column(whole)
        for member in members:
            difference = pc.subtract(difference, table.column(member))
        name = f"{whole}_minus_{'_'.join(members)}"
        table = table.append_column(name, difference)
        added.append(name)
    for key in dict.fromkeys(k for k, _, _ in nested):
        wider_of = {narrower: wider for k, narrower, wider in nested if k == key}
        others = [c for c in cells if c != key]
        rows = zip(*(table.column(c).to_pylist() for c in (*others, key, count_column)))
        count_at = {tuple(row[:-1]): row[-1] for row in rows}
        values = []
        for *other, value in zip(*(table.column(c).to_pylist() for c in (*others, key))):
            wider = count_at.get((*other, wider_of[value])) if value in wider_of else None
            mine = count_at.get((*other, value))
            values.append(None if wider is None or mine is None else wider - mine)
        name = f"wider_{count_column}_minus_{count_column}_by_{key}"
        table = table.append_column(name, pa.array(values, pa.int64()))
        added.append(name)
    return table, tuple(added)


def month_after(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=1) + timedelta(days=31)).replace(day=1)


def split_cuts(split: date) -> list[date]:
    """The days whose spans before them a check of `split` reads: the first of its month, every
    day of the month after it, and the first of the next month."""
    first = split.replace(day=1)
    following = month_after(first)
    return [first + timedelta(days=n) for n in range((following - first).days + 1)]


def split_totals(splits: Iterable[date]) -> tuple[Coarsening, ...]:
    """The coarsenings of a day whose totals before/after rows at `splits` publish, beside whole
    months: each month's parts between the splits cutting it (month_parts), and each split's two
    spans, the days before it and the days from it on (a split on the first of a month, never
    published, aside). A daily table planned against them hides a second day in a part holding
    one hidden day, and counts the spans as published when protecting what it hides."""
    chosen = sorted({split for split in splits if split.day != 1})
    return (month_parts(chosen), *(_side_of(split) for split in chosen))


def whole_months_beside(splits: Iterable[date]) -> tuple[Coarsening, ...]:
    """The coarsenings of a month whose totals before/after rows at `splits` publish beside a
    monthly table: for each split, the whole months before the month it cuts and those after it
    (the month itself in neither: NOT_SUMMED). A span less its part of the cut month is such a
    total, and the daily tables give the part; a monthly table planned against them hides a
    second month on the same side of the split as a hidden one (a split on the first of a
    month, never published, aside)."""
    return tuple(_months_beside(split.replace(day=1))
                 for split in sorted(set(splits)) if split.day != 1)


def _months_beside(cut: date) -> Coarsening:
    return lambda month: NOT_SUMMED if month == cut else month > cut


def without_one_day_parts(splits: Iterable[date]) -> frozenset[date]:
    """The split dates (day 1 aside) of the months none of whose parts is a single day: a one-day
    part is a day the spans and months alone give, which a plan against them would give up
    protecting (plan_suppression), so such a month is left to the day rule."""
    kept: set[date] = set()
    for first, inside in _by_month(split for split in splits if split.day != 1).items():
        bounds = [first, *inside, month_after(first)]
        if all((later - earlier).days > 1 for earlier, later in zip(bounds, bounds[1:])):
            kept.update(inside)
    return frozenset(kept)


def _side_of(split: date) -> Coarsening:
    return lambda day: day >= split


def month_parts(splits: Iterable[date]) -> Coarsening:
    """A day's part of its month between the split dates cutting it, named by the part's first
    day (the month's first, or the latest split date in the month on or before the day): the
    totals a before/after span less the whole months beside it publishes. A day of a month no
    split date cuts maps to its month's first, its month being one part."""
    cuts_in = _by_month(splits)

    def part_of(day: date) -> date:
        first = day.replace(day=1)
        return max((cut for cut in cuts_in.get(first, ()) if cut <= day), default=first)

    return part_of


def _by_month(splits: Iterable[date]) -> dict[date, list[date]]:
    """The split dates, in order, under their month's first day."""
    found: dict[date, list[date]] = {}
    for split in sorted(set(splits)):
        found.setdefault(split.replace(day=1), []).append(split)
    return found


def unsafe_splits(
    before: Mapping[date, Mapping[tuple, Sequence[float]]],
    totals: Mapping[tuple, Sequence[float]],
    splits: Iterable[date],
    k: int,
    daily: Mapping[tuple, Sequence[int]] | None = None,
    planned: Iterable[date] = (),
) -> dict[date, str]:
    """The split dates whose before/after rows would give away a count under k, each with why.

    A row before/after a split date publishes the people of the whole span on each side. The
    monthly tables publish whole months, so a span less the months beside it counts the people of
    the split's month before it (and after it); two splits in one month give the days between
    them; and a daily table's days, against that part of a month, give back a hidden day. So a
    split is published only when, in every cell (a group and definition; a column counting
    people), each part of the month it cuts between the cuts counts 0 or at least k, and so does
    each day of that month, unless the daily tables planned their suppression against those very
    parts. `planned` names the split dates they did (split_totals; public mode plans with the
    split dates the metrics read by default): when the splits judged in a month are exactly the
    planned ones of that month (day 1 aside), the daily tables hid a second day in any part
    holding one hidden day, so a part less its published days gives no day back, and only the
    parts are checked. A split date not planned (one asked for) keeps the day rule for its whole
    month: its parts are not the ones the days were planned against. Then everything the spans
    add to what the monthly and daily tables publish is a sum of counts each 0 or at least k, or
    a total the daily tables' suppression already counted as published. Splits in other months
    add equations of their own unknowns (their own months' parts), so each month is judged alone.

    A split on the first of a month cuts none: its spans are sums of whole months, totals the
    monthly tables' suppression did not count as published, and it is never published.

    `before[cut][cell]` holds a cell's counts (one per column) over the days before `cut`, for
    every day `split_cuts` names; a cut missing from it lies outside the data's span (nothing
    before it when it precedes the split, everything when it follows). `totals[cell]` holds the
    cell's counts over the whole span. `daily[cell]` names the columns (by position) a daily table
    may publish, whose every day is checked (by default all); the others are checked by part.
    """
    unsafe: dict[date, str] = {}
    chosen = sorted(set(splits))
    for split in chosen:
        if split.day == 1:
            unsafe[split] = (
                "it falls on the first of a month, so its spans are sums of whole months, totals "
                "the monthly tables' suppression did not plan for"
            )
    by_month = _by_month(split for split in chosen if split not in unsafe)
    planned_in = _by_month(split for split in planned if split.day != 1)
    for first, inside in by_month.items():
        cuts = split_cuts(inside[0])
        boundaries = [cuts[0], *inside, cuts[-1]]
        by_part = planned_in.get(first) == inside
        for cell, total in totals.items():

            def counted_before(cut: date) -> Sequence[float]:
                if cut in before:
                    return before[cut].get(cell, [0.0] * len(total))
                return [0.0] * len(total) if cut < inside[0] else total

            parts = _differences([counted_before(c) for c in boundaries])
            by_day = range(len(total)) if daily is None else daily.get(cell, range(len(total)))
            days = [] if by_part else [
                [counts[c] for c in by_day]
                for counts in _differences([counted_before(c) for c in cuts])
            ]
            if any(_is_small(v, k) for counts in (*days, *parts) for v in counts):
                what = "a part" if by_part else "a day or a part"
                reason = (
                    f"{what} of the month it cuts ({first:%Y-%m}) counts fewer than {k} "
                    "people, which the month's published total less the spans would give away"
                )
                unsafe.update({split: reason for split in inside})
                break
    return unsafe


def _differences(cumulative: Sequence[Sequence[float]]) -> list[list[float]]:
    return [[b - a for a, b in zip(earlier, later)]
            for earlier, later in zip(cumulative, cumulative[1:])]


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


def curve_caveat(k: int) -> str:
    """What a curve's public view says in place of its day-by-day rows (coarsen_curve)."""
    return (
        "Public mode shows this curve at coarser steps: each row closes the days since the row "
        "before it, chosen so that in every group shown the stays that ended in them and the "
        f"stays censored in them (at the last row: or still held after it) are each 0 or at "
        f"least {k}; at_risk is then the stays still held at the start of those days and ended "
        "those that ended during them, and survival is the Kaplan-Meier estimate at the row's "
        "day, as in the full curve. Day by day, two neighbouring rows' at_risk would differ by "
        f"the stays that left that day, often fewer than {k}."
    )


@dataclass(frozen=True)
class CoarsenedCurve:
    table: pa.Table
    # The steps kept, shared by every group: each shown row lies on one.
    steps: tuple
    # Rows of the groups shown folded into a later kept step.
    folded: int
    # Groups hidden whole: their own totals are small, or they keep one such group company.
    hidden_groups: int
    complementary_groups: int


def coarsen_curve(
    table: pa.Table,
    step: str,
    at_risk: str,
    ended: str,
    groups: Sequence[str],
    k: int,
    *,
    within: Iterable | None = None,
    ended_after: Mapping[tuple, float] | None = None,
) -> CoarsenedCurve:
    """A survival curve at steps coarse enough that no interval gives away fewer than k people.

    Each row of `table` is a step (a day since book-in) of one group's curve (the values of
    `groups`), with `at_risk` counted at its start, `ended` during it, and the other columns (the
    survival) at its end. Two neighbouring rows' at_risk differ by the stays that ended or were
    censored between them, often fewer than k. So the curve is shown only at kept steps, shared
    by every group: between two kept steps, each group's stays that ended and those censored are
    each 0 or at least k (chosen greedily from the first step; the last step closes the curve,
    its censored counting the stays still at risk after it). A kept row stands for its interval:
    at_risk at the interval's start, ended summed over it, the other columns as at the kept step.
    A Kaplan-Meier survival is a product over the steps, so at a kept step it is the full
    curve's, and its change since the previous kept step depends only on the interval's exits
    (their order inside it, never the days they fell on).

    `within` restricts the kept steps to those of a coarser table (the curve without a
    breakdown): each of its intervals is then a union of this table's, and the two give no part
    of an interval back. `ended_after[group]` counts the group's stays that ended after the last
    step, which a published total of ended stays less the curve's ended gives: it must be 0 or
    at least k too, and the last interval's censored are then the rest. A group whose own totals
    are small is hidden whole (`<k`), never alone (the smallest other group is hidden with it,
    `complementary`); the hidden groups' sum (the coarser curve less the groups shown) must keep
    to the same rule, so more are hidden until it does.
    """
    after = ended_after or {}
    rows = table.to_pylist()
    series: dict[tuple, list[int]] = {}
    for position, row in enumerate(rows):
        series.setdefault(tuple(row[g] for g in groups), []).append(position)
    exits: dict[tuple, dict] = {}
    for key, members in series.items():
        members.sort(key=lambda r: rows[r][step])
        held = [rows[r][at_risk] or 0 for r in members[1:]] + [after.get(key, 0)]
        exits[key] = {}
        for r, held_after in zip(members, held):
            left = rows[r][ended] or 0
            exits[key][rows[r][step]] = (left, (rows[r][at_risk] or 0) - left - held_after)

    def safe(counts: Sequence[float]) -> bool:
        return not any(_is_small(c, k) for c in counts)

    def total(keys: Iterable[tuple]) -> list[float]:
        keys = list(keys)
        return [*(sum(v[i] for key in keys for v in exits[key].values()) for i in (0, 1)),
                sum(after.get(key, 0) for key in keys)]

    by_size = sorted(series, key=lambda key: (rows[series[key][0]][at_risk] or 0, str(key)))
    primary = {key for key in series if not safe(total([key]))}
    hidden = set(primary)
    while hidden and len(hidden) < len(series) and (len(hidden) == 1 or not safe(total(hidden))):
        hidden.add(next(key for key in by_size if key not in hidden))
    constraints = [exits[key] for key in series if key not in hidden]
    if hidden and len(hidden) < len(series):
        together: dict = {}
        for key in hidden:
            for at, (left, censored) in exits[key].items():
                was = together.get(at, (0, 0))
                together[at] = (was[0] + left, was[1] + censored)
        constraints.append(together)
    steps = _kept_steps(sorted({at for v in exits.values() for at in v}), constraints, safe,
                        within)
    shown: list[dict] = []
    labels: list[str | None] = []
    folded = 0
    for key, members in series.items():
        if key in hidden:
            last = dict(rows[members[-1]])
            for name in table.column_names:
                if name not in groups and not _is_public(name, table.schema.field(name).type):
                    last[name] = None
            shown.append({**last, step: steps[-1]})
            labels.append(f"<{k}" if key in primary else COMPLEMENTARY_LABEL)
            continue
        by_interval: dict[int, list[int]] = {}
        for r in members:
            by_interval.setdefault(bisect_left(steps, rows[r][step]), []).append(r)
        for interval, inside in by_interval.items():
            shown.append({
                **rows[inside[-1]],
                step: steps[interval],
                at_risk: rows[inside[0]][at_risk],
                ended: sum(rows[r][ended] or 0 for r in inside),
            })
            labels.append(None)
            folded += len(inside) - 1
    coarse = pa.Table.from_pylist(shown, schema=table.schema)
    return CoarsenedCurve(
        coarse.append_column(SUPPRESSION_COLUMN, pa.array(labels, pa.string())),
        tuple(steps), folded, len(primary), len(hidden - primary),
    )


def _kept_steps(steps: list, constraints: Sequence[Mapping], safe, within) -> list:
    """The steps closing an interval in which each constraint's counts are safe, greedily from
    the first; the last step always closes one (merging back as far as it must)."""
    if not steps:
        return []
    allowed = set(steps) if within is None else set(within) | {steps[-1]}
    kept: list = []
    sums: list[list[float]] = []
    running = [0.0] * (2 * len(constraints))
    for at in steps:
        for j, counts in enumerate(constraints):
            left, censored = counts.get(at, (0, 0))
            running[2 * j] += left
            running[2 * j + 1] += censored
        if at in allowed and safe(running):
            kept.append(at)
            sums.append(running)
            running = [0.0] * len(running)
    if any(running):
        while kept and not safe(running):
            kept.pop()
            running = [a + b for a, b in zip(running, sums.pop())]
        kept.append(steps[-1])
    return kept


def hide_rows(suppressed: pa.Table, rows: Iterable[int], label: str, kept: Iterable[str]
              ) -> pa.Table:
    """A suppressed table with `rows` hidden too, labelled `label` where not hidden already:
    every column but `kept` and the public ones becomes null."""
    rows = set(rows)
    if not rows:
        return suppressed
    mask = pa.array([r in rows for r in range(suppressed.num_rows)], pa.bool_())
    kept = set(kept)
    columns = []
    for name in suppressed.column_names:
        column = suppressed.column(name)
        if name == SUPPRESSION_COLUMN:
            column = pc.if_else(pc.and_(mask, pc.is_null(column)), pa.scalar(label), column)
        elif name not in kept and not _is_public(name, column.type):
            column = pc.if_else(mask, pa.scalar(None, column.type), column)
        columns.append(column)
    return pa.table(columns, names=suppressed.column_names)


def _apply(
    table: pa.Table,
    kept_columns: set[str],
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
        if name not in kept_columns and not _is_public(name, column.type):
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
    # A published total with exactly one hidden cell gives that cell away by subtraction. The
    # narrowest totals are closed first (a method inside its setting before the month's total),
    # so that a complement is found near the cell it protects: closing the grand total first
    # would hide the table's smallest cell wherever it lies, and spread from there.
    narrowest_first = sorted(published, key=len)
    changed = True
    while changed:
        changed = False
        for members in narrowest_first:
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


def _determined_targets(
    published, hidden: set[int], targets: Sequence[tuple[int, ...]]
) -> list[tuple[int, ...]]:
    """Targets (a cell, or a total of cells) whose value follows exactly from what is published.

    A reader knows, for each published group, the sum of its hidden cells (total minus the
    visible ones). The sum over a target's hidden cells is determined iff that indicator vector
    lies in the row space of the incidence matrix, i.e. iff its projection onto the row space is
    as long as the vector. A target with no hidden cell is plainly determined.
    """
    order = sorted(hidden)
    position = {cell: p for p, cell in enumerate(order)}
    basis = _row_space(
        [[position[i] for i in members if i in hidden] for members in published], len(order)
    )
    determined = []
    for target in targets:
        inside = [position[i] for i in target if i in hidden]
        if not inside:
            determined.append(target)
            continue
        length = float(len(inside))
        projected = float((basis[inside].sum(axis=0) ** 2).sum())
        if projected > length * (1 - _DETERMINED_TOLERANCE):
            determined.append(target)
    return determined


def _row_space(rows: Sequence[Sequence[int]], unknowns: int) -> np.ndarray:
    """An orthonormal basis (one row per unknown) of the space the equations span, each equation
    the sum of the unknowns it lists. Found from whichever is smaller: the incidence matrix
    itself (fewer equations than unknowns: the singular vectors) or its Gram matrix A'A
    (unknowns x unknowns: the eigenvectors), which have the same row space."""
    rows = [r for r in rows if r]
    if not rows or not unknowns:
        return np.zeros((unknowns, 0))
    if len(rows) < unknowns:
        incidence = np.zeros((len(rows), unknowns))
        for equation, members in enumerate(rows):
            incidence[equation, members] = 1.0
        _, singular, right = np.linalg.svd(incidence, full_matrices=False)
        strength, vectors = singular**2, right.T
    else:
        gram = np.zeros((unknowns, unknowns))
        for members in rows:
            gram[np.ix_(members, members)] += 1.0
        strength, vectors = np.linalg.eigh(gram)
    scale = max(float(strength.max()), 1.0)
    return vectors[:, strength > _RANK_TOLERANCE * scale]


@dataclass(frozen=True)
class Recovery:
    """A count under k that a reader can work out from published tables."""

    column: str
    value: float
    # Which published table and row (None: a cell of the finest table, published in none).
    table: int | None
    row: int


def audit(
    published: Sequence[tuple[pa.Table, Sequence[str]]],
    truth: pa.Table,
    people: Sequence[str],
    k: int,
    totals: Sequence[tuple[str, str, str]] = (),
) -> list[Recovery]:
    """Every count under k that the published tables, read together, give away.

    The attacker's view, written apart from the planner: `published` holds each served table with
    the columns that identify its rows; `truth` holds the true counts at the finest level of all of
    them (one row per combination of their columns). For each column of `people`, every
    published value is an equation over the finest cells (a published row is the sum of the
    finest rows it covers; a trailing mean `<column>_<N>d_avg` the sum of its window), and a
    count is recovered when the equations pin it down: a published value under k, a hidden
    published row, or a finest cell, whose value is in (0, k). `totals` names columns holding a
    total of another over one key, as (column, counted column, key): each visible one is an
    equation over the counted column's cells.
    """
    found: list[Recovery] = []
    truth_rows = truth.to_pylist()
    for column in people:
        sums = [(total, over) for total, counted, over in totals if counted == column]
        found.extend(_audit_column(published, truth_rows, column, k, sums))
    return found


def _audit_column(published, truth_rows, column, k, sums) -> list[Recovery]:
    true = [float(row.get(column) or 0) for row in truth_rows]
    found: list[Recovery] = []
    covered: list[tuple[int, int, list[int], float | None]] = []  # table, row, finest rows, value
    for t, (table, dims) in enumerate(published):
        if column not in table.column_names:
            continue
        index: dict[tuple, list[int]] = {}
        for i, row in enumerate(truth_rows):
            index.setdefault(tuple(row[d] for d in dims), []).append(i)
        rows = table.to_pylist()
        for r, row in enumerate(rows):
            cells = index.get(tuple(row[d] for d in dims), [])
            covered.append((t, r, cells, row[column]))
        for total, over in sums:
            if total not in table.column_names or over not in dims:
                continue
            kept = [d for d in dims if d != over]
            by_group: dict[tuple, list[int]] = {}
            for i, row in enumerate(truth_rows):
                by_group.setdefault(tuple(row[d] for d in kept), []).append(i)
            for r, row in enumerate(rows):
                # Not a row of any table: an equation only, never a target (table None).
                covered.append((None, r, by_group.get(tuple(row[d] for d in kept), []), row[total]))
        for rolling, length in rolling_windows(table.column_names).items():
            if rolling.split(f"_{length}d")[0] == column and "date" in dims:
                covered.extend(_window_equations(t, rows, dims, index, rolling, length))
    known = {cells[0] for _, _, cells, value in covered if value is not None and len(cells) == 1}
    equations = [
        [c for c in cells if c not in known]
        for _, _, cells, value in covered
        if value is not None and len(cells) > 1
    ]
    equations = [e for e in equations if e]
    unknowns = sorted({c for e in equations for c in e})
    position = {c: p for p, c in enumerate(unknowns)}
    basis = np.zeros((len(unknowns), 0))
    if unknowns:
        gram = np.zeros((len(unknowns), len(unknowns)))
        for members in equations:
            inside = [position[c] for c in members]
            gram[np.ix_(inside, inside)] += 1.0
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        scale = max(float(eigenvalues.max()), 1.0)
        basis = eigenvectors[:, eigenvalues > _RANK_TOLERANCE * scale]

    def determined(cells: Iterable[int]) -> bool:
        unknown = [c for c in cells if c not in known]
        if not unknown:
            return True
        if any(c not in position for c in unknown):
            return False
        projected = float((basis[[position[c] for c in unknown]].sum(axis=0) ** 2).sum())
        return projected > len(unknown) * (1 - _DETERMINED_TOLERANCE)

    for t, r, cells, value in covered:
        if t is None:
            continue
        total = sum(true[c] for c in cells)
        if value is not None and _is_small(float(value), k):
            found.append(Recovery(column, float(value), t, r))
        elif value is None and _is_small(total, k) and determined(cells):
            found.append(Recovery(column, total, t, r))
    for cell, value in enumerate(true):
        if _is_small(value, k) and cell not in known and determined([cell]):
            found.append(Recovery(column, value, None, cell))
        elif _is_small(value, k) and cell in known:
            found.append(Recovery(column, value, None, cell))
    return found


def audit_curve(
    table: pa.Table, step: str, at_risk: str, ended: str, groups: Sequence[str], k: int,
    ended_total: Mapping[tuple, float] | None = None,
) -> list[tuple[tuple, object, str, float]]:
    """Every count in (0, k) a served survival curve shows or gives by difference, as (group,
    step, what, count): the attacker's side of coarsen_curve. Between two shown rows of a group,
    the stays that ended are the later row's `ended`, and those censored the earlier row's
    at_risk less the later's less its ended; after the last row, at_risk less ended are the
    stays censored in it or still at risk after it. With `ended_total[group]` (the group's ended
    stays, published elsewhere), it less the shown ended counts the stays that ended after the
    last row, which the last row's censored then leave out."""
    shown = [row for row in table.to_pylist() if row.get(SUPPRESSION_COLUMN) is None]
    series: dict[tuple, list[dict]] = {}
    for row in shown:
        series.setdefault(tuple(row[g] for g in groups), []).append(row)
    found = []
    for key, rows in series.items():
        rows.sort(key=lambda row: row[step])
        later = 0
        if ended_total and key in ended_total:
            later = ended_total[key] - sum(row[ended] for row in rows)
            if _is_small(later, k):
                found.append((key, None, f"{ended} after the last row", later))
        for row, following in zip(rows, [*rows[1:], None]):
            held_after = following[at_risk] if following else later
            counts = {at_risk: row[at_risk], ended: row[ended],
                      "censored": row[at_risk] - row[ended] - held_after}
            found += [(key, row[step], what, value) for what, value in counts.items()
                      if _is_small(value, k)]
    return found


def _window_equations(t, rows, dims, index, rolling, length):
    """A visible trailing mean is the sum of its window's days over their number."""
    others = [d for d in dims if d != "date"]
    series: dict[tuple, list[dict]] = {}
    for row in rows:
        series.setdefault(tuple(row[d] for d in others), []).append(row)
    for members in series.values():
        members.sort(key=lambda row: row["date"])
        for position, row in enumerate(members):
            if row[rolling] is None:
                continue
            window = members[max(0, position - length + 1) : position + 1]
            cells = sorted({c for w in window for c in index.get(tuple(w[d] for d in dims), [])})
            # Not a row of any table: an equation only, never a target (t is None).
            yield (None, position, cells, row[rolling])
