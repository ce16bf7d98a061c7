"""Benchmark: `iceledger demo` end to end (target ≤ 60 s) and `iceledger report` (target ≤ 20 s).

Each runs as a whole process, the way a user runs it, on 2 cores. The report is timed on the
warehouse the demo built, and beside it the same report without the PDF, so the PDF's share of the
time is visible.

    python benchmarks/bench_demo.py [--scale N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from iceledger.demo import DEFAULT_SCALE

DEMO_TARGET_S = 60.0
REPORT_TARGET_S = 20.0


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


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
        # Median of three: one run on a shared 2-core machine swings by seconds.
        report = statistics.median(
            timed([*cli, "report", "--out", "r.html", "--warehouse", warehouse], work)
            for _ in range(3)
        )
        report_pdf = statistics.median(
            timed([*cli, "report", "--out", "r.html", "--pdf", "--warehouse", warehouse], work)
            for _ in range(3)
        )
    print(f"iceledger demo (scale {args.scale:,}, SYNTHETIC): {demo:6.1f} s   "
          f"target <= {DEMO_TARGET_S:.0f} s   {'ok' if demo <= DEMO_TARGET_S else 'OVER'}")
    print(f"iceledger report (HTML, median of 3): {report:5.1f} s   "
          f"target <= {REPORT_TARGET_S:.0f} s   {'ok' if report <= REPORT_TARGET_S else 'OVER'}")
    print(f"iceledger report --pdf (median of 3): {report_pdf:5.1f} s   "
          f"PDF adds {report_pdf - report:.1f} s ({report_pdf / report:.2f}x the HTML alone)")


if __name__ == "__main__":
    main()
