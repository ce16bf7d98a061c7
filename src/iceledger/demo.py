"""`iceledger demo`: the whole pipeline, offline, on a seeded SYNTHETIC release.

synth → ingest (with derived tables) → every metric → report, then a one-screen summary. Every
number the demo prints comes from a registered metric and says so; every line says SYNTHETIC.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import ibis

from iceledger.errors import IceledgerError
from iceledger.metrics.backends import duckdb_backend
from iceledger.metrics.registry import MetricParams, compute
from iceledger.report.build import ReportResult, build_report
from iceledger.sources.foia.ingest import IngestReport, foia_paths, ingest_foia
from iceledger.sources.stats.ingest import ingest_stats
from iceledger.synth.releases import write_synthetic_releases
from iceledger.synth.workbooks import write_synthetic_workbooks
from iceledger.warehouse import Warehouse

# Large enough that a public report blanks no day of a national daily series: at this scale the
# quietest days, Sundays before the 2025 surge (synth_model.toml's 280-310 arrests a day, a
# Sunday 0.65 of that), still expect about twice the 10 people below which a count is suppressed.
DEFAULT_SCALE = 60_000
DEFAULT_SEED = 2025
# The newest release alone (it covers every day the older one does, and each day is read from the
# newest release covering it), with every dataset: the pipeline's detainers and encounters too.
DEMO_RELEASES = ("2026-03",)
# The date the 3,000-arrests-a-day target was set; the demo reports shares from then on.
TARGET_DATE = date(2025, 5, 21)


@dataclass
class DemoResult:
    out_dir: Path
    warehouse: Path
    files: list[Path]
    ingest: IngestReport
    report: ReportResult
    workbooks: list = field(default_factory=list)  # the stats ingest's IngestedFile per workbook
    headlines: list[tuple[str, str, str]] = field(default_factory=list)  # figure, value, metric
    seconds: dict[str, float] = field(default_factory=dict)


def run_demo(
    out_dir: Path,
    scale: int = DEFAULT_SCALE,
    seed: int = DEFAULT_SEED,
    step: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    if scale < 100:
        raise IceledgerError(f"--scale {scale} is too small for a demo; use at least 100")
    files_dir = out_dir / "synthetic-release"
    workbooks_dir = out_dir / "synthetic-workbooks"
    warehouse_path = out_dir / "demo.duckdb"
    # A demo always starts from nothing so that its numbers are the seed's, not a leftover's.
    for stale in (files_dir, workbooks_dir, warehouse_path,
                  warehouse_path.with_suffix(".duckdb.wal")):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    files_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    step(f"writing a SYNTHETIC release (scale {scale:,}, seed {seed})")
    files = [f.path for f in write_synthetic_releases(
        files_dir, scale, seed=seed, fmt="xlsx", releases=DEMO_RELEASES)]
    seconds["synth"] = time.perf_counter() - started

    started = time.perf_counter()
    step(f"ingesting {len(files)} files and deriving stays, episodes and links")
    ingest = ingest_foia(foia_paths([files_dir]), Warehouse(warehouse_path))
    if not ingest.ok:
        problems = [f.error for f in ingest.files if f.error] + [ingest.derived_error or ""]
        raise IceledgerError("demo ingest failed: " + "; ".join(p for p in problems if p))
    # A few workbooks in ICE's published layout, drawn from the same synthetic records, so that
    # the published-statistics and reconciliation views have something to show.
    step("writing SYNTHETIC detention-statistics workbooks from those records and loading them")
    workbooks = write_synthetic_workbooks(warehouse_path, workbooks_dir)
    loaded = ingest_stats(workbooks, Warehouse(warehouse_path))
    if loaded.failed:
        raise IceledgerError("demo workbook ingest failed: " + "; ".join(
            e for f in loaded.files for e in f.errors))
    seconds["ingest"] = time.perf_counter() - started

    started = time.perf_counter()
    step("computing every metric and writing the report")
    report = build_report(warehouse_path, out_dir / "report.html")
    seconds["report"] = time.perf_counter() - started

    result = DemoResult(out_dir, warehouse_path, files, ingest, report, loaded.files,
                        seconds=seconds)
    result.headlines = headlines(warehouse_path)
    return result


def headlines(warehouse_path: Path) -> list[tuple[str, str, str]]:
    """A few figures for the terminal, each with the metric that defines it."""
    backend = duckdb_backend(warehouse_path)
    try:
        found = [
            _headline(
                backend, "arrests_vs_target", MetricParams(), -1,
                lambda r: (f"arrests/day, 7-day mean to {r['date']}",
                           f"{_number(r['arrests_7d_avg'])} against the {r['target']} target of "
                           f"{_number(r['target_per_day'])} ({_number(r['attainment_7d_pct'])}%)"),
                # An alternative report of a target is a row beside the primary one, never the
                # headline.
                keep=lambda r: r["target_status"] == "primary",
            ),
            _headline(
                backend, "arrest_criminality_period", MetricParams(start=TARGET_DATE), 0,
                lambda r: (f"arrests {r['period_start']} to {r['period_end']} with no conviction",
                           f"{_share(r['no_conviction_share'])} (no conviction and no charge: "
                           f"{_share(r['no_conviction_no_charge_share'])})"),
            ),
            _headline(
                backend, "detained_population_daily", MetricParams(), -1,
                lambda r: (f"people detained on {r['date']}",
                           f"{_number(r['population_midnight'])} at midnight, "
                           f"{_number(r['population_24h'])} at any time that day"),
            ),
            _headline(
                backend, "length_of_stay", MetricParams(), 0,
                lambda r: ("length of stay (Kaplan-Meier median, open stays censored)",
                           f"{_number(r['km_median_days'])} days (mean of closed stays only: "
                           f"{_number(r['naive_closed_mean_days'])})"),
            ),
        ]
    finally:
        backend.disconnect()
    return [line for line in found if line]


def _headline(
    backend: ibis.BaseBackend,
    metric: str,
    params: MetricParams,
    row: int,
    describe: Callable[[dict], tuple[str, str]],
    keep: Callable[[dict], bool] = lambda _: True,
) -> tuple[str, str, str] | None:
    """(figure, value, metric) read from one row of the metric's result (0 first, -1 last)."""
    rows = [r for r in compute(metric, backend, params).to_pylist() if keep(r)]
    return (*describe(rows[row]), metric) if rows else None


def _number(value) -> str:
    return "n/a" if value is None else f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.1f}"


def _share(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"
