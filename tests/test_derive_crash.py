"""A kill at any moment of `ingest`, in a load or in the derive after it, leaves every metric right
after the next command: the derived flags and tables are never older than the loaded rows
without the warehouse saying so (tables.DERIVED_STATE)."""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import HANG_GUARD_SECONDS
from typer.testing import CliRunner

from iceledger import metrics  # noqa: F401 - registers every metric
from iceledger.cli import app
from iceledger.errors import IceledgerError
from iceledger.metrics.backends import duckdb_backend
from iceledger.metrics.registry import compute
from iceledger.sources.foia.ingest import foia_paths, ingest_foia
from iceledger.synth.releases import generate_release
from iceledger.warehouse import Warehouse

COMPARED = ("arrests_per_day", "book_ins_per_day", "removals_per_day", "arrest_outcomes",
            "length_of_stay",
            # Read the person facts the derive carries on each stay, and previous arrests.
            "long_term_residents", "book_in_ages", "family_facility_stays",
            "detained_not_removable", "repeat_arrests")


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, dict]:
    """A SYNTHETIC release, and its metrics after an uninterrupted ingest."""
    root = tmp_path_factory.mktemp("crash")
    generate_release(root / "files", 3_000, seed=5, fmt="parquet")
    reference = root / "reference.duckdb"
    assert ingest_foia(foia_paths([root / "files"]), Warehouse(reference)).ok
    return root / "files", _metrics(reference)


def _metrics(warehouse: Path) -> dict:
    backend = duckdb_backend(warehouse)
    return {name: compute(name, backend).to_pylist() for name in COMPARED}


def _kill_when_shown(args: list[str], shown: bytes) -> bytes:
    """Run the real command on a pseudo-terminal (so it draws its progress) and kill it hard
    as soon as `shown` is on screen."""
    controller, terminal = pty.openpty()
    child = subprocess.Popen([sys.executable, "-m", "iceledger", *args], stdin=subprocess.DEVNULL,
                             stdout=terminal, stderr=terminal,
                             env={**os.environ, "COLUMNS": "200", "TERM": "xterm"})
    os.close(terminal)
    screen = b""
    # Waits for the event; the deadline only guards against a hang.
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while shown not in screen and time.monotonic() < deadline:
        assert child.poll() is None, f"the command ended before it could be killed: {screen!r}"
        if select.select([controller], [], [], 0.05)[0]:
            screen += os.read(controller, 65536)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=HANG_GUARD_SECONDS)
    os.close(controller)
    return screen


@pytest.mark.parametrize("moment", [b"SYNTHETIC_", b"deriving the FOIA tables"],
                         ids=["in a load", "in the derive"])
def test_a_kill_leaves_metrics_right_after_the_next_command(tmp_path, release, moment):
    files, expected = release
    warehouse = tmp_path / "w.duckdb"
    screen = _kill_when_shown(["ingest", "foia", str(files), "--warehouse", str(warehouse)], moment)
    assert b"Traceback" not in screen
    if moment.startswith(b"deriving"):
        # The loads committed, the derive did not: the warehouse says so, and nothing reads it.
        assert Warehouse(warehouse).derived_stale()
        with pytest.raises(IceledgerError, match="run `iceledger derive`"):
            duckdb_backend(warehouse)
        refused = CliRunner().invoke(app, ["metric", "arrests_per_day", "--warehouse",
                                           str(warehouse)])
        assert refused.exit_code != 0 and "iceledger derive" in refused.output
        assert "Traceback" not in refused.output
    # The next command: the same ingest again, with every file already loaded or not.
    again = CliRunner().invoke(app, ["ingest", "foia", str(files), "--warehouse", str(warehouse)])
    assert again.exit_code == 0, again.output
    assert not Warehouse(warehouse).derived_stale()
    assert _metrics(warehouse) == expected


def test_no_derive_is_stale_until_derive(tmp_path, release):
    files, expected = release
    warehouse = tmp_path / "w.duckdb"
    copy = tmp_path / "files"
    shutil.copytree(files, copy)
    assert ingest_foia(foia_paths([copy]), Warehouse(warehouse), derive=False).ok
    assert Warehouse(warehouse).derived_stale()
    result = CliRunner().invoke(app, ["derive", "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    assert _metrics(warehouse) == expected
