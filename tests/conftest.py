"""Shared fixtures. Tests that read the real shared data skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ICELEDGER_SHARED", REPO_ROOT.parent / "shared"))
STATS_WORKBOOKS = SHARED / "data" / "ice-detention-stats"
DDP_REFERENCE = STATS_WORKBOOKS / "ddp-reference"
# Tests wait on events (a line printed, a port answering); this bound only stops a hung test, so
# it is far above any wait on a loaded machine.
HANG_GUARD_SECONDS = 600


@pytest.fixture(scope="session")
def stats_workbooks() -> list[Path]:
    files = sorted(STATS_WORKBOOKS.glob("*.xlsx"))
    if not files:
        pytest.skip(f"real ICE workbooks not found under {STATS_WORKBOOKS} (set ICELEDGER_SHARED)")
    return files


@pytest.fixture(scope="session")
def ddp_reference() -> Path:
    if not DDP_REFERENCE.is_dir():
        pytest.skip(f"Deportation Data Project reference parse not found at {DDP_REFERENCE}")
    return DDP_REFERENCE


@pytest.fixture(scope="session")
def synthetic_warehouse(tmp_path_factory) -> Path:
    """A small warehouse built by the real pipeline from a seeded SYNTHETIC release."""
    from iceledger.sources.foia.ingest import foia_paths, ingest_foia
    from iceledger.synth.releases import generate_release
    from iceledger.warehouse import Warehouse

    root = tmp_path_factory.mktemp("synthetic-warehouse")
    generate_release(root / "files", 1_500, seed=11, fmt="parquet")
    report = ingest_foia(foia_paths([root / "files"]), Warehouse(root / "w.duckdb"))
    assert report.ok, [f.error for f in report.files if f.error]
    return root / "w.duckdb"
