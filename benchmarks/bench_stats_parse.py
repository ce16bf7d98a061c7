"""Benchmark: parse every table of the 34 ICE detention-statistics workbooks.

    python benchmarks/bench_stats_parse.py [FOLDER]

Times whole processes (interpreter start and imports included), each parsing every workbook in
FOLDER (default ../shared/data/ice-detention-stats) with iceledger's parser:

- calamine: the parse as shipped, cells read by python-calamine;
- openpyxl: the same parse, cells read by openpyxl (read-only mode), the usual Python reader;
- read only: python-calamine reading every cell of every sheet and doing nothing else, the floor
  any parse built on it stands on.

Targets, on the wall clock: the calamine parse within 2.5 s and at least 10 times faster than the
openpyxl one. The CPU time each process used (user + system, all threads) is shown beside: on a
machine shared with other work the wall clock also measures the waiting, the CPU time does not.
The ratios, taken in the same run on the same machine, carry across machines better than seconds
do.
Before timing, the two readers' parses of three workbooks are checked to be identical, and
iceledger's modules are compiled to bytecode once, as `pip install` does: every worker then loads
them as an installed package would, instead of recompiling them when PYTHONDONTWRITEBYTECODE is
set (it is on some machines; it cost each worker ~15 ms, the same in every mode). A worker imports
only what its parse uses; the timing harness's own modules are imported by the parent alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "ice-detention-stats"
TARGET_SECONDS = 2.5
TARGET_SPEEDUP = 10.0
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
    if mode == "read":
        import python_calamine

        cells = 0
        for path in workbooks(folder):
            book = python_calamine.CalamineWorkbook.from_path(str(path))
            for sheet in book.sheet_names:
                cells += sum(map(len, book.get_sheet_by_name(sheet).to_python(
                    skip_empty_area=False)))
        return f"{cells} cells"
    from iceledger.sources.stats.ingest import parse_workbook

    source = {"calamine": None, "openpyxl": OpenpyxlSource}[mode]
    loaded = quarantined = errors = 0
    for path in workbooks(folder):
        parsed = parse_workbook(path, source) if source else parse_workbook(path)
        loaded += parsed.rows_loaded
        quarantined += len(parsed.quarantined)
        errors += len(parsed.errors)
    return f"{loaded} values loaded, {quarantined} quarantined, {errors} errors"


def timed(mode: str, folder: Path) -> tuple[float, float, str]:
    """Wall-clock and CPU seconds (user + system) of one whole worker process, and its output."""
    import resource
    import subprocess
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, WORKER, mode, str(folder)],
                          check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout.strip()


def same_tables(folder: Path, count: int = 3) -> bool:
    from iceledger.sources.stats.ingest import parse_workbook

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

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each; the median is shown.")
    args = parser.parse_args()
    files = workbooks(args.folder)
    if not files:
        sys.exit(f"no workbooks in {args.folder}")
    print(f"{len(files)} workbooks in {args.folder}")
    print(f"openpyxl and calamine parses identical (3 workbooks): {same_tables(args.folder)}")
    import iceledger

    compileall.compile_dir(Path(iceledger.__file__).parent, quiet=1)
    wall, cpu = {}, {}
    for mode in ("read", "calamine", "openpyxl"):
        runs = [timed(mode, args.folder) for _ in range(args.repeat)]
        wall[mode] = statistics.median(run[0] for run in runs)
        cpu[mode] = statistics.median(run[1] for run in runs)
        print(f"{mode:>9}: {wall[mode]:6.2f} s wall, {cpu[mode]:6.2f} s CPU  ({runs[0][2]})")
    speedup = wall["openpyxl"] / wall["calamine"]
    print(f"calamine parse: {wall['calamine']:.2f} s "
          f"({_verdict(wall['calamine'] <= TARGET_SECONDS)} <= {TARGET_SECONDS:g} s), "
          f"{speedup:.1f}x faster than the openpyxl parse "
          f"({_verdict(speedup >= TARGET_SPEEDUP)} >= {TARGET_SPEEDUP:g}x), "
          f"{wall['calamine'] / wall['read']:.2f}x the time of reading every cell")
    print(f"in CPU time (not the target; steadier on a busy machine): "
          f"{cpu['openpyxl'] / cpu['calamine']:.1f}x faster than openpyxl, "
          f"{cpu['calamine'] / cpu['read']:.2f}x reading every cell")


def _verdict(met: bool) -> str:
    return "target met:" if met else "TARGET MISSED:"


if __name__ == "__main__":
    if sys.argv[1:2] == [WORKER]:
        print(work(sys.argv[2], Path(sys.argv[3])))
    else:
        main()
