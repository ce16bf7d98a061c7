"""Benchmark: `iceledger ingest stats` of the 34 ICE detention-statistics workbooks.

    python benchmarks/bench_stats_parse.py [FOLDER] [--repeat N] [--parsers]

Times whole processes (interpreter start and imports included), in the same run:

- read: python-calamine reading every cell of every sheet of every workbook in FOLDER
  (default ../shared/data/ice-detention-stats) and doing nothing else, the floor any ingest
  built on it stands on;
- stack: the same read after importing what the command stands on before any of its own work
  (Typer with its pydantic adapters, Rich, DuckDB, Arrow): the floor of any ingest written
  with these libraries;
- ingest: the whole `iceledger ingest stats FOLDER` command into a fresh warehouse: parse,
  checks, loading the workbooks in one transaction, and the review across releases;
- re-ingest: the same command again on the same warehouse, every file unchanged;
- with --parsers, the parse alone as shipped (calamine) and on openpyxl (read-only mode), the
  usual Python reader, after checking the two give identical tables for three workbooks.

Targets: the whole ingest within 1.6 times the read floor, the re-ingest within 0.5 s (and, with
--parsers, the calamine parse at least 10 times faster than the openpyxl one). Each is judged on
the wall clock and on the CPU time each process used (user + system, all threads): on a machine
shared with other work the wall clock also measures the waiting, the CPU time does not. The
ratios, taken in the same run on the same machine, carry across machines better than seconds do.
iceledger's modules are compiled to bytecode once first, as `pip install` does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SHARED = Path(os.environ.get("ICELEDGER_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DEFAULT_FOLDER = SHARED / "data" / "ice-detention-stats"
TARGET_INGEST_RATIO = 1.6  # whole ingest / read floor
TARGET_REINGEST_SECONDS = 0.5
TARGET_SPEEDUP = 10.0  # calamine parse / openpyxl parse
# First argument of a timed worker process: `bench_stats_parse.py --worker MODE FOLDER`.
WORKER = "--worker"


class OpenpyxlSource:
    """The parser's cell source, reading with openpyxl instead of python-calamine."""

    def __init__(self, path: Path):
        import openpyxl

        self._book = openpyxl.load_workbook(path, read_only=True, data_only=True)

    @property
    def sheet_names(self) -> list[str]:
        return list(self._book.sheetnames)

    def rows(self, sheet: str) -> list[list]:
        rows = [list(row) for row in self._book[sheet].iter_rows(values_only=True)]
        width = max((len(row) for row in rows), default=0)
        return [row + [None] * (width - len(row)) for row in rows]


def workbooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.xlsx"))


def work(mode: str, folder: Path) -> str:
    """What one timed process does; returns a line describing the result."""
    if mode in ("read", "stack"):
        if mode == "stack":
            import duckdb  # noqa: F401
            import pyarrow  # noqa: F401
            import rich.progress  # noqa: F401
            import typer._adapters  # noqa: F401
        import python_calamine

        cells = 0
        for path in workbooks(folder):
            book = python_calamine.CalamineWorkbook.from_path(str(path))
            for sheet in book.sheet_names:
                cells += sum(map(len, book.get_sheet_by_name(sheet).to_python(
                    skip_empty_area=False)))
        return f"{cells} cells"
    from iceledger.sources.stats.parse import parse_workbook

    source = {"calamine": None, "openpyxl": OpenpyxlSource}[mode]
    loaded = quarantined = errors = 0
    for path in workbooks(folder):
        parsed = parse_workbook(path, source) if source else parse_workbook(path)
        loaded += parsed.rows_loaded
        quarantined += len(parsed.quarantined)
        errors += len(parsed.errors)
    return f"{loaded} values loaded, {quarantined} quarantined, {errors} errors"


def timed(mode: str, folder: Path, warehouse: Path) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds (user + system) of one whole process, and its last line."""
    import resource
    import subprocess
    import time

    if mode == "ingest":
        for stale in warehouse.parent.glob(warehouse.name + "*"):
            stale.unlink()
    if mode in ("ingest", "reingest"):
        command = [sys.executable, "-m", "iceledger", "ingest", "stats", str(folder),
                   "--warehouse", str(warehouse)]
    else:
        command = [sys.executable, __file__, WORKER, mode, str(folder)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    summary = next((line for line in lines if " loaded, " in line and "already" in line),
                   lines[-1] if lines else "")
    return wall, cpu, summary.strip()


def same_tables(folder: Path, count: int = 3) -> bool:
    from iceledger.sources.stats.parse import parse_workbook

    for path in workbooks(folder)[-count:]:
        ours, theirs = parse_workbook(path), parse_workbook(path, OpenpyxlSource)
        if set(ours.tables) != set(theirs.tables):
            return False
        for name, table in ours.tables.items():
            if name != "stats_workbooks" and table.to_pylist() != theirs.tables[name].to_pylist():
                print(f"  {path.name}: {name} differs between readers")
                return False
    return True


def main() -> None:
    import argparse
    import compileall
    import statistics
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each; the median is shown.")
    parser.add_argument("--parsers", action="store_true",
                        help="Also time the parse alone on calamine and on openpyxl.")
    args = parser.parse_args()
    files = workbooks(args.folder)
    if not files:
        sys.exit(f"no workbooks in {args.folder}")
    print(f"{len(files)} workbooks in {args.folder}")
    modes = ["read", "stack", "ingest", "reingest"]
    if args.parsers:
        print(f"openpyxl and calamine parses identical (3 workbooks): {same_tables(args.folder)}")
        modes += ["calamine", "openpyxl"]
    import iceledger

    compileall.compile_dir(Path(iceledger.__file__).parent, quiet=1)
    wall, cpu = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        warehouse = Path(scratch) / "bench.duckdb"
        # Interleaved, so that a busy spell of the machine falls on every mode alike.
        runs: dict[str, list] = {mode: [] for mode in modes}
        for _ in range(args.repeat):
            for mode in modes:
                runs[mode].append(timed(mode, args.folder, warehouse))
    for mode in modes:
        wall[mode] = statistics.median(run[0] for run in runs[mode])
        cpu[mode] = statistics.median(run[1] for run in runs[mode])
        print(f"{mode:>9}: {wall[mode]:6.2f} s wall, {cpu[mode]:6.2f} s CPU  "
              f"({runs[mode][0][2]})")
    for clock, taken in (("wall", wall), ("CPU", cpu)):
        ratio = taken["ingest"] / taken["read"]
        print(f"whole ingest, {clock}: {taken['ingest']:.2f} s, {ratio:.2f}x the read floor "
              f"({_verdict(ratio <= TARGET_INGEST_RATIO)} <= {TARGET_INGEST_RATIO:g}x); "
              f"re-ingest of unchanged files: {taken['reingest']:.2f} s "
              f"({_verdict(taken['reingest'] <= TARGET_REINGEST_SECONDS)} <= "
              f"{TARGET_REINGEST_SECONDS:g} s)")
    stack = cpu["stack"] / cpu["read"]
    print(f"the stack alone (imports, then the read): {cpu['stack']:.2f} s CPU, {stack:.2f}x the "
          "read floor" + (f": no ingest on these libraries can come within "
                          f"{TARGET_INGEST_RATIO:g}x" if stack > TARGET_INGEST_RATIO else ""))
    if args.parsers:
        speedup = wall["openpyxl"] / wall["calamine"]
        print(f"calamine parse: {wall['calamine']:.2f} s, {speedup:.1f}x faster than the openpyxl "
              f"parse ({_verdict(speedup >= TARGET_SPEEDUP)} >= {TARGET_SPEEDUP:g}x), "
              f"{wall['calamine'] / wall['read']:.2f}x the time of reading every cell")


def _verdict(met: bool) -> str:
    return "target met:" if met else "TARGET MISSED:"


if __name__ == "__main__":
    if sys.argv[1:2] == [WORKER]:
        print(work(sys.argv[2], Path(sys.argv[3])))
    else:
        main()
