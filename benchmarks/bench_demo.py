"""Benchmark: `iceledger demo` end to end (target ≤ 60 s) and `iceledger report` (target ≤ 20 s).

Each runs as a whole process, the way a user runs it, on 2 cores. The report is timed on the
warehouse the demo built, and beside it the same report without the PDF, so the PDF's share of the
time is visible.

    python benchmarks/bench_demo.py [--scale N]

Prints wall and CPU seconds of each (CPU: user + system of the process and its children).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from iceledger.demo import DEFAULT_SCALE

DEMO_TARGET_S = 60.0
REPORT_TARGET_S = 20.0


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, all its threads) of the command's process. On a
    machine shared with other work the wall clock also measures the waiting; the CPU time not."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_of_three(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU medians of three runs: one run on a shared 2-core machine swings by seconds."""
    runs = [timed(command, cwd) for _ in range(3)]
    return (statistics.median(wall for wall, _ in runs),
            statistics.median(cpu for _, cpu in runs))


def verdict(wall: float, cpu: float, target: float) -> str:
    return (f"{wall:5.1f} s wall, {cpu:5.1f} s CPU   target <= {target:.0f} s   "
            f"{'ok' if wall <= target else 'OVER'} (wall), "
            f"{'ok' if cpu <= target else 'OVER'} (CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=DEFAULT_SCALE,
                        help=f"the demo's default is {DEFAULT_SCALE:,}")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "iceledger"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        demo = timed([*cli, "demo", "--out", "demo", "--scale", str(args.scale)], work)
        warehouse = str(work / "demo" / "demo.duckdb")
        report = median_of_three([*cli, "report", "--out", "r.html", "--warehouse", warehouse],
                                 work)
        report_pdf = median_of_three(
            [*cli, "report", "--out", "r.html", "--pdf", "--warehouse", warehouse], work)
    print(f"iceledger demo (scale {args.scale:,}, SYNTHETIC): {verdict(*demo, DEMO_TARGET_S)}")
    print(f"iceledger report (HTML, median of 3): {verdict(*report, REPORT_TARGET_S)}")
    print(f"iceledger report --pdf (median of 3): {report_pdf[0]:5.1f} s wall, "
          f"{report_pdf[1]:5.1f} s CPU   PDF adds {report_pdf[0] - report[0]:.1f} s wall "
          f"({report_pdf[0] / report[0]:.2f}x the HTML alone)")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")

if __name__ == "__main__":
    main()
