"""A tiny hand-built warehouse and two test metrics for the dashboard's tests (SYNTHETIC data).

The dashboard serves whatever the registry holds; these tests register two small metrics over a
warehouse whose every answer is counted by hand below, and remove them afterwards. Other test
files import `build_warehouse` and `registered_test_metrics` from here; the tests at the bottom
check the hand counts themselves, so a wrong fixture cannot make the web tests pass.
"""

from __future__ import annotations

import contextlib
import socket
from datetime import date, datetime, timedelta
from pathlib import Path

import ibis
import pyarrow as pa
from ibis import _

from iceledger.metrics import registry
from iceledger.metrics.registry import Metric, MetricParams, register
from iceledger.warehouse import RowAccounting, SourceLoad, Warehouse, mark_derived

DAILY = "webtest_arrests_daily"
BY_GROUP = "webtest_arrests_by_group"
NEEDS_MISSING_TABLE = "webtest_needs_missing_table"
TEST_METRICS = (DAILY, BY_GROUP, NEEDS_MISSING_TABLE)
ARREST_FILTERS = ("aor", "criminality", "citizenship_country", "apprehension_method")

CC, PC, OIV = "Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator"

# (day of January 2025, aor, criminality, citizenship_country, apprehension_method, how many rows)
ARREST_GROUPS = [
    (2, "Atlanta", CC, "Mexico", "CAP Local Incarceration", 12),
    (2, "Atlanta", OIV, "Guatemala", "Located", 3),
    (3, "Atlanta", PC, "Mexico", "CAP Local Incarceration", 20),
    (3, "Houston", CC, "Honduras", "Non-Custodial Arrest", 15),
    (4, "Houston", OIV, "Mexico", "Located", 25),
    (4, "Houston", PC, "Guatemala", "Located", 4),
    (5, "New Orleans", CC, "Honduras", "CAP Local Incarceration", 30),
    (5, "New Orleans", OIV, "Mexico", "Non-Custodial Arrest", 18),
    (6, "Atlanta", CC, "Mexico", "Located", 16),
]
# Rows flagged as duplicates (same person within 24 hours) are loaded but never counted.
DUPLICATES = [(3, "Houston", CC, "Honduras", "Non-Custodial Arrest", 5)]

# Hand counts of the non-duplicate arrests above.
TOTAL_ARRESTS = 143
ARRESTS_BY_AOR = {"Atlanta": 51, "Houston": 44, "New Orleans": 48}
ARRESTS_BY_DAY = {
    date(2025, 1, 2): 15,
    date(2025, 1, 3): 35,
    date(2025, 1, 4): 29,
    date(2025, 1, 5): 48,
    date(2025, 1, 6): 16,
}

# Facilities sheet rows: (workbook, name, city, state, zip, aor, adp).
OLD_WORKBOOK = "FY25_detentionStats_SYNTHETIC_0101.xlsx"
NEW_WORKBOOK = "FY25_detentionStats_SYNTHETIC_0201.xlsx"
FACILITIES = [
    (OLD_WORKBOOK, "STEWART DETENTION CENTER", "LUMPKIN", "GA", "31815", "ATL", 1200.0),
    (NEW_WORKBOOK, "STEWART DETENTION CENTER", "LUMPKIN", "GA", "31815", "ATL", 1500.0),
    (NEW_WORKBOOK, "IRWIN COUNTY SYNTHETIC JAIL", "OCILLA", "GA", "", "ATL", 4.0),
    (NEW_WORKBOOK, "SYNTHETIC PROCESSING CENTER", "CONROE", "TX", "77301", "HOU", 900.0),
    (NEW_WORKBOOK, "SYNTHETIC COUNTY ANNEX", "", "TX", "", "HOU", 35.0),
    (NEW_WORKBOOK, "SYNTHETIC ISLAND FACILITY", "SAN JUAN", "PR", "00901", "MIA", 50.0),
]


def _arrest_rows(weeks: int, scale: int) -> pa.Table:
    rows = []
    for week in range(weeks):
        for groups, duplicate in ((ARREST_GROUPS, False), (DUPLICATES, True)):
            for day, aor, criminality, country, method, n in groups:
                for i in range(n * scale):
                    rows.append(
                        {
                            "apprehension_date": datetime(2025, 1, day, 8 + i % 10)
                            + timedelta(weeks=week),
                            "aor": aor,
                            "criminality": criminality,
                            "citizenship_country": country,
                            "apprehension_method": method,
                            "is_duplicate": duplicate,
                            "source_file": "arrests-SYNTHETIC.xlsx",
                            "source_sheet": "Sheet1",
                            "source_row": len(rows) + 2,
                        }
                    )
    return pa.Table.from_pylist(rows)


def build_warehouse(path: Path, weeks: int = 1, scale: int = 1) -> Path:
    """Write the warehouse through the real loader, every source marked synthetic.

    The defaults give the hand-counted tiny warehouse; the benchmark repeats the same week
    `weeks` times with every group `scale` times larger.
    """
    warehouse = Warehouse(path)
    arrests = _arrest_rows(weeks, scale)
    n_dup = sum(g[-1] for g in DUPLICATES) * weeks * scale
    warehouse.load(
        SourceLoad(
            path=Path("arrests-SYNTHETIC.xlsx"),
            sha256="a" * 64,
            kind="foia",
            dataset="arrests",
            layout="webtest",
            tables={"webtest_arrests": arrests},
            accounting=RowAccounting(
                rows_read=arrests.num_rows, rows_loaded=arrests.num_rows - n_dup, rows_duplicate=n_dup
            ),
            synthetic=True,
        )
    )
    # The test table carries its duplicate flags already, as a derive would have set them.
    with warehouse.connect() as con:
        mark_derived(con, stale=False)
    for index, workbook in enumerate((OLD_WORKBOOK, NEW_WORKBOOK)):
        rows = [f for f in FACILITIES if f[0] == workbook]
        facilities = pa.Table.from_pylist(
            [
                dict(zip(("workbook", "name", "city", "state", "zip", "aor", "adp"), f))
                | {"fiscal_year": 2025, "type_detailed": "IGSA", "alos": 30.0,
                   "sheet": "Facilities FY25", "cell_range": f"A{7 + i}:AE{7 + i}"}
                for i, f in enumerate(rows)
            ]
        )
        workbooks = pa.Table.from_pylist(
            [{"workbook": workbook, "fiscal_year": 2025,
              "file_date": date(2025, 1 + index, 1), "as_of_date": date(2025, 1 + index, 1)}]
        )
        warehouse.load(
            SourceLoad(
                path=Path(workbook),
                sha256=str(index) * 64,
                kind="stats",
                tables={"stats_facilities": facilities, "stats_workbooks": workbooks},
                accounting=RowAccounting(rows_read=len(rows), rows_loaded=len(rows)),
                synthetic=True,
            )
        )
    return path


def _arrests(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    table = backend.table("webtest_arrests").filter(~_.is_duplicate)
    table = table.mutate(date=_.apprehension_date.date())
    if params.start:
        table = table.filter(_.date >= params.start)
    if params.end:
        table = table.filter(_.date <= params.end)
    for name, values in params.filters.items():
        table = table.filter(table[name].isin(values))
    return table


def _daily(backend, params):
    keys = ["date", *params.by]
    return _arrests(backend, params).group_by(keys).agg(arrests=_.count()).order_by(keys)


def _by_group(backend, params):
    table = _arrests(backend, params)
    if not params.by:
        return table.aggregate(arrests=_.count())
    counted = table.group_by(list(params.by)).agg(arrests=_.count())
    return counted.mutate(share=counted.arrests / counted.arrests.sum().over()).order_by(list(params.by))


def free_port() -> int:
    """A free TCP port on the loopback interface, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def registered_test_metrics():
    """Register the test metrics for the duration of a block (the registry is process-wide)."""
    definitions = [
        Metric(
            name=DAILY,
            title="Arrests per day (test metric)",
            question="volume",
            definition="Non-duplicate rows of webtest_arrests (shaped like foia_arrests) per calendar day of apprehension_date.",
            unit="arrests per day",
            caveats=("Test metric over a hand-built synthetic warehouse.",),
            tables=("webtest_arrests",),
            build=_daily,
            dimensions=("aor", "criminality"),
            filters=ARREST_FILTERS,
            count_column="arrests",
        ),
        Metric(
            name=BY_GROUP,
            title="Arrests by group (test metric)",
            question="targeting",
            definition="Non-duplicate rows of webtest_arrests (shaped like foia_arrests) in the period, and each group's share.",
            unit="arrests",
            caveats=("Test metric over a hand-built synthetic warehouse.",),
            tables=("webtest_arrests",),
            build=_by_group,
            dimensions=("aor", "criminality", "citizenship_country"),
            filters=ARREST_FILTERS,
            count_column="arrests",
        ),
        Metric(
            name=NEEDS_MISSING_TABLE,
            title="A metric whose table this warehouse lacks (test metric)",
            question="outcomes",
            definition="Reads a table the tiny warehouse does not have.",
            unit="removals",
            caveats=(),
            tables=("foia_removals",),
            build=lambda backend, params: backend.table("foia_removals").aggregate(n=_.count()),
        ),
    ]
    for metric in definitions:
        register(metric)
    try:
        yield
    finally:
        for name in TEST_METRICS:
            registry.REGISTRY.pop(name, None)


# --- the fixture's hand counts are right ----------------------------------------------------


def test_hand_counts_match_the_rows(tmp_path):
    build_warehouse(tmp_path / "w.duckdb")
    with registered_test_metrics():
        backend = ibis.duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
        by_aor = registry.compute(BY_GROUP, backend, MetricParams(by=("aor",))).to_pylist()
        daily = registry.compute(DAILY, backend).to_pylist()
        total = registry.compute(BY_GROUP, backend).to_pylist()
    assert {r["aor"]: r["arrests"] for r in by_aor} == ARRESTS_BY_AOR
    assert {r["date"]: r["arrests"] for r in daily} == ARRESTS_BY_DAY
    assert total == [{"arrests": TOTAL_ARRESTS}]
    assert sum(g[-1] for g in ARREST_GROUPS) == TOTAL_ARRESTS


def test_every_source_is_marked_synthetic(tmp_path):
    warehouse = Warehouse(build_warehouse(tmp_path / "w.duckdb"))
    assert {s["synthetic"] for s in warehouse.sources()} == {True}
