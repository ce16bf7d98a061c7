"""Bad FOIA input: one clear line per bad file naming where, the other files still load, exit 1;
a re-run after the fix loads exactly once; a killed ingest leaves the warehouse as it was."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from conftest import HANG_GUARD_SECONDS
from test_foia_ingest import RELEASE_NAME, arrest_row, layout, write_xlsx
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.sources.foia.ingest import ingest_foia
from iceledger.warehouse import Warehouse

HEADERS = layout("arrests-2026-03").headers


def run_cli(*args: str):
    return CliRunner().invoke(app, ["ingest", "foia", *args])


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def csv_line(delimiter: str = ",", **changes) -> str:
    row = arrest_row(**changes)
    return delimiter.join("" if row[h] is None else str(row[h]).replace(",", " ")
                          for h in HEADERS)


def test_each_bad_file_is_one_line_naming_where_and_the_good_file_still_loads(tmp_path):
    good = write_xlsx(tmp_path / RELEASE_NAME, "arrests-2026-03", [[arrest_row()]])
    truncated = tmp_path / "truncated_20260311.xlsx"
    truncated.write_bytes(good.read_bytes()[:-2000])
    corrupt = tmp_path / "corrupt_20260311.xlsx"
    corrupt.write_bytes(b"PK\x03\x04 this is not a workbook" * 50)
    other_header = [*HEADERS, "Apprehension County Name"]
    mixed = write_xlsx(tmp_path / "mixed_Arrests_20260311.xlsx", "arrests-2026-03",
                       [[arrest_row()], [arrest_row()]], headers=[list(HEADERS), other_header])
    not_foia = tmp_path / "FY26_detentionStats_20260311.xlsx"
    write_xlsx(not_foia, "arrests-2026-03", [[{}]], headers=[["Facility", "ADP", "ALOS"]])
    wrong_delimiter = write_csv(tmp_path / "delim_Arrests_20260311.csv",
                                [",".join(HEADERS), csv_line(";"), csv_line(";")])
    utf16 = write_csv(tmp_path / "utf16_Arrests_20260311.csv", [",".join(HEADERS), csv_line()],
                      encoding="utf-16-le")
    bad_utf8 = tmp_path / "latin_Arrests_20260311.csv"
    bad_utf8.write_bytes("\n".join([",".join(HEADERS)] + [csv_line()] * 40_000).encode()
                         + b"\n" + csv_line(County="DO\xd1A").encode("latin-1") + b"\n")
    db = tmp_path / "w.duckdb"
    result = run_cli(str(truncated), str(corrupt), str(mixed), str(not_foia),
                     str(wrong_delimiter), str(utf16), str(bad_utf8), str(good),
                     "--warehouse", str(db))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 7, result.output
    text = "\n".join(errors)
    assert "truncated_20260311.xlsx: not a readable xlsx workbook (truncated or corrupt" in text
    assert "corrupt_20260311.xlsx: not a readable xlsx workbook" in text
    assert ("mixed_Arrests_20260311.xlsx, sheet 'Sheet2', row 7: this sheet's header differs "
            "from sheet 'Sheet1'") in text and "extra Apprehension County Name" in text
    assert "FY26_detentionStats_20260311.xlsx, sheet 'Sheet1': not a FOIA release" in text
    assert "delim_Arrests_20260311.csv, row 2: Expected 25 columns, got 1" in text
    assert "utf16_Arrests_20260311.csv, row 1: not a text CSV in a known encoding" in text
    assert "latin_Arrests_20260311.csv, row 40002: not valid UTF-8" in text
    assert "Traceback" not in result.output
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT file_name FROM ingest_sources").fetchall() == [(good.name,)]
        assert con.execute("SELECT count(*) FROM foia_arrests").fetchone() == (1,)

    # Fixed, the file loads, once: the re-run skips the file already loaded.
    write_csv(wrong_delimiter, [",".join(HEADERS), csv_line(), csv_line(Gender="Female")])
    for _ in range(2):
        assert run_cli(str(wrong_delimiter), str(good), "--warehouse", str(db)).exit_code == 0
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM ingest_sources").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM foia_arrests").fetchone() == (3,)


# Tries at catching the load in progress: on a busy machine the test may be scheduled only after
# the command has finished, and a signal to a finished command tests nothing.
CATCH_TRIES = 3


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill -9", "ctrl-c"])
def test_a_killed_or_interrupted_ingest_leaves_the_warehouse_as_it_was(tmp_path, sig):
    db = tmp_path / "w.duckdb"
    first = write_xlsx(tmp_path / RELEASE_NAME, "arrests-2026-03", [[arrest_row()]])
    assert run_cli(str(first), "--warehouse", str(db)).exit_code == 0
    with duckdb.connect(str(db)) as con:
        before = con.execute("SELECT * FROM foia_arrests ORDER BY record_id").fetchall()
        sources = con.execute("SELECT sha256 FROM ingest_sources").fetchall()
    big = tmp_path / "big_Arrests_FY23-FY26_20260311.csv"
    lines = [csv_line(**{"Anonymized Identifier": f"P{i}"}) for i in range(2000)]
    with open(big, "w") as handle:
        handle.write(",".join(HEADERS) + "\n")
        for _ in range(300):
            handle.write("\n".join(lines) + "\n")
    original = db.read_bytes()
    for _ in range(CATCH_TRIES):
        db.write_bytes(original)
        child, screen = _signal_the_load_in_progress(big, db, sig)
        if child is not None:
            break
    else:
        pytest.fail(f"the load ended before it could be signalled, {CATCH_TRIES} times: "
                    f"{screen[-2000:]!r}")
    assert b"Traceback" not in screen
    # Ctrl-C ends the command cleanly (exit 130, "the warehouse is unchanged").
    assert child.returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 130), screen[-2000:]
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT * FROM foia_arrests ORDER BY record_id").fetchall() == before
        assert con.execute("SELECT sha256 FROM ingest_sources").fetchall() == sources


def _signal_the_load_in_progress(path: Path, db: Path, sig: int):
    """Run `iceledger ingest foia` on a pseudo-terminal (so that it draws its progress bar) and,
    once the bar's latest figure shows rows going in (inside the load's transaction, before its
    commit) with the command still running, send it `sig`; then read the terminal until it ends.
    Returns the ended command and its screen, or None and the screen when it ended first."""
    controller, terminal = pty.openpty()
    child = subprocess.Popen([sys.executable, "-m", "iceledger", "ingest", "foia", str(path),
                              "--warehouse", str(db)], stdin=subprocess.DEVNULL,
                             stdout=terminal, stderr=terminal,
                             env={**os.environ, "COLUMNS": "160", "TERM": "xterm"})
    os.close(terminal)
    screen = b""
    # Waits for the event (a progress figure on screen), not for a guessed time; the deadline
    # only guards against a hang.
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    caught = False
    while time.monotonic() < deadline and child.poll() is None:
        ready, _, _ = select.select([controller], [], [], 0.05)
        if ready:
            screen += os.read(controller, 65536)
        latest = re.findall(rb"(\d+)%", screen)[-1:]
        if latest and 0 < int(latest[0]) < 90 and child.poll() is None:
            os.kill(child.pid, sig)
            caught = True
            break
    assert caught or child.poll() is not None, f"the ingest did not start: {screen[-2000:]!r}"
    # The terminal is read while the command winds down, as a real one would be: a pseudo-
    # terminal nobody reads fills up and blocks the progress bar's last writes.
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while True:
        try:
            if select.select([controller], [], [], 0.05)[0]:
                screen += os.read(controller, 65536)
            elif child.poll() is not None:
                break
        except OSError:  # the terminal closed with the process
            break
        assert time.monotonic() < deadline, f"the ingest did not end: {screen[-2000:]!r}"
    child.wait(timeout=HANG_GUARD_SECONDS)
    os.close(controller)
    return (child if caught else None), screen


cells = st.one_of(st.none(), st.sampled_from(["", "b(6), b(7)C", "YES", "x", "1 Convicted "
                                              "Criminal", "2025-01-02", "45000.5", "1980"]),
                  st.text(max_size=5))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.sampled_from([datetime(2025, 1, 2), "not a date", None,
                                                 "b(6), b(7)c", "45000"]),
                               st.lists(cells, min_size=3, max_size=3)), max_size=12))
def test_every_row_read_is_loaded_quarantined_or_a_flagged_duplicate(tmp_path, rows):
    records = [arrest_row(**{"Apprehension Date": key, "County": a, "Gender": b,
                             "Anonymized Identifier": c}) for key, (a, b, c) in rows]
    folder = tmp_path / str(len(list(tmp_path.iterdir())))
    folder.mkdir()
    path = write_xlsx(folder / RELEASE_NAME, "arrests-2026-03", [records])
    warehouse = Warehouse(folder / "w.duckdb")
    (outcome,) = ingest_foia([path], warehouse).files
    assert outcome.status == "loaded"  # a header with no rows under it loads no rows
    a = outcome.accounting
    assert a.rows_read == a.rows_loaded + a.rows_quarantined + a.rows_duplicate
    loaded = {r["source_row"] for r in warehouse.read_table("foia_arrests").to_pylist()}
    quarantined = {q["row_number"] for q in warehouse.read_table("ingest_quarantine").to_pylist()}
    assert len(quarantined) == a.rows_quarantined
    assert not loaded & quarantined
    assert len(loaded) == a.rows_loaded + a.rows_duplicate
    assert loaded | quarantined == {8 + i for i in range(a.rows_read)}
