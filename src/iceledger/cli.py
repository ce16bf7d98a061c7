"""The `iceledger` command line. Thin: parses arguments, calls the package, prints results.

Every command takes --warehouse PATH (default ./iceledger.duckdb, or $ICELEDGER_WAREHOUSE).
A user-facing problem prints one red line and exits 1; no traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from iceledger.errors import IceledgerError
from iceledger.warehouse import DEFAULT_WAREHOUSE, Warehouse

console = Console()
err_console = Console(stderr=True)

START_HERE, LOAD_DATA, NUMBERS, WAREHOUSE = "Start here", "Load data", "Numbers", "Warehouse"
# The order `iceledger --help` lists commands in (and so its panels), newcomer's first step first.
HELP_ORDER = ("demo", "report", "serve", "fetch", "ingest", "synth", "derive", "metrics", "metric",
              "claims", "reconcile", "stats", "tables", "sources", "export")


class _HelpOrder(TyperGroup):
    def list_commands(self, ctx):
        last = len(HELP_ORDER)
        return sorted(super().list_commands(ctx),
                      key=lambda n: HELP_ORDER.index(n) if n in HELP_ORDER else last)


app = typer.Typer(
    help="iceledger: sourced, documented numbers from the public record of ICE enforcement.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_HelpOrder,
)
ingest_app = typer.Typer(help="Load source files into the warehouse.", no_args_is_help=True)
stats_app = typer.Typer(help="ICE detention-statistics workbooks.", no_args_is_help=True)
fetch_app = typer.Typer(help="Download public source files.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest", rich_help_panel=LOAD_DATA)
app.add_typer(stats_app, name="stats", rich_help_panel=NUMBERS)
app.add_typer(fetch_app, name="fetch", rich_help_panel=LOAD_DATA)

WarehouseOption = Annotated[
    Path,
    typer.Option(
        "--warehouse",
        envvar="ICELEDGER_WAREHOUSE",
        help="DuckDB warehouse file.",
        dir_okay=False,
    ),
]


def user_errors(command):
    """Show IceledgerError as one line and exit 1, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except IceledgerError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted:[/] the warehouse is unchanged by the "
                              "unfinished load", highlight=False)
            raise typer.Exit(130) from None

    return wrapper


@app.command("export", rich_help_panel=WAREHOUSE)
@user_errors
def export_command(
    table: Annotated[str, typer.Argument(help="Warehouse table to write.")],
    format: Annotated[str, typer.Option("--format", "-f", help="csv or parquet.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Output file (default TABLE.FORMAT).")
    ] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Write any warehouse table to CSV or Parquet."""
    target = output or Path(f"{table}.{format}")
    store = Warehouse(warehouse)
    rows = store.export(table, format, target)
    console.print(f"wrote {rows:,} rows of {table} to {target}")
    if any(source["synthetic"] for source in store.sources()):
        console.print("[bold yellow]SYNTHETIC DATA[/]: this warehouse holds files written by "
                      "`iceledger synth`; label the export as synthetic wherever it goes.")


@app.command("tables", rich_help_panel=WAREHOUSE)
@user_errors
def tables_command(warehouse: WarehouseOption = DEFAULT_WAREHOUSE) -> None:
    """List the warehouse's tables."""
    for name in Warehouse(warehouse).table_names():
        console.print(name)


@app.command("sources", rich_help_panel=WAREHOUSE)
@user_errors
def sources_command(warehouse: WarehouseOption = DEFAULT_WAREHOUSE) -> None:
    """List every loaded source file with its hash and row accounting."""
    table = Table("file", "kind", "dataset", "sha256", "read", "loaded", "quarantined",
                  "duplicate", "synthetic")
    for s in Warehouse(warehouse).sources():
        table.add_row(s["file_name"], s["kind"], s["dataset"] or "", s["sha256"][:12],
                      f"{s['rows_read']:,}", f"{s['rows_loaded']:,}",
                      f"{s['rows_quarantined']:,}", f"{s['rows_duplicate']:,}",
                      "yes" if s["synthetic"] else "no")
    console.print(table)


@ingest_app.command("stats")
@user_errors
def ingest_stats_command(
    paths: Annotated[list[Path], typer.Argument(help="Workbooks (.xlsx), or folders of them.")],
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Parse ICE detention-statistics workbooks into the warehouse, one transaction each."""
    from rich.progress import Progress

    from iceledger.sources.stats.ingest import ingest_stats, workbook_paths

    files = workbook_paths(paths)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("workbooks", total=len(files))
        summary = ingest_stats(files, Warehouse(warehouse), progress=lambda _: bar.advance(task))
    for f in summary.files:
        console.print(f"{f.status} {f.path.name}: {f.rows_loaded:,} values loaded, "
                      f"{f.rows_quarantined:,} quarantined, {len(f.warnings)} warnings",
                      highlight=False, soft_wrap=True)
        for problem in f.errors:
            err_console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
    console.print(f"{summary.count('loaded')} loaded, {summary.count('unchanged')} already "
                  f"loaded, {summary.count('failed')} failed; warnings and quarantine: "
                  "iceledger export stats_workbooks / ingest_quarantine", highlight=False)
    if summary.count("loaded"):
        from iceledger.sources.stats.checks import review_warehouse

        print_checks_summary(review_warehouse(Warehouse(warehouse)))
    if summary.failed:
        raise typer.Exit(1)


@ingest_app.command("foia")
@user_errors
def ingest_foia_command(
    paths: Annotated[list[Path], typer.Argument(
        help="FOIA release files (.xlsx, .csv, .parquet), or folders of them.")],
    release: Annotated[str | None, typer.Option(
        "--release", help="Release date YYYY-MM-DD, for files whose name carries none.")] = None,
    facility_reference: Annotated[list[Path] | None, typer.Option(
        "--facility-reference",
        help="CSV/TSV with a *facility_code column of known facility codes (repeatable).")] = None,
    derive: Annotated[bool, typer.Option(
        "--derive/--no-derive",
        help="Rebuild the derived tables after loading. --no-derive: load several batches "
             "first, then run `iceledger derive` once.")] = True,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Load individual-level ICE FOIA records (one transaction per file), then rebuild the
    derived tables. Exits 1 if any file could not be loaded."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from iceledger.sources.foia.ingest import foia_paths, ingest_foia

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  console=err_console, transient=True) as bar:
        def track(path: Path, size: int):
            task = bar.add_task(path.name[-48:], total=size)
            return lambda done: bar.advance(task, done)

        report = ingest_foia(foia_paths(paths), Warehouse(warehouse), release=release,
                             facility_references=facility_reference or (), on_file=track,
                             derive=derive,
                             on_derive=lambda: err_console.print("deriving the FOIA tables ..."))
    table = Table("file", "layout", "release", "read", "loaded", "quarantined", "duplicate",
                  "status", "s")
    for f in report.files:
        a = f.accounting
        table.add_row(f.path.name, f.layout or "", f.release or "", f"{a.rows_read:,}",
                      f"{a.rows_loaded:,}", f"{a.rows_quarantined:,}", f"{a.rows_duplicate:,}",
                      f.status + (" (synthetic)" if f.synthetic else ""), f"{f.seconds:.1f}")
    console.print(table)
    for f in report.files:
        for c in f.checks:
            if c["status"] != "pass":
                colour = "red" if c["status"] == "fail" else "yellow"
                console.print(f"[{colour}]{c['status']}[/] {f.path.name}: {c['check']} "
                              f"{c['failed_rows']:,} of {c['total_rows']:,} rows "
                              f"(first at {c['example']})", highlight=False, soft_wrap=True)
        for warning in f.warnings:
            console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
        if f.error:
            err_console.print(f"[bold red]error:[/] {f.error}", highlight=False, soft_wrap=True)
    counts = {s: sum(f.status == s for f in report.files) for s in ("loaded", "already loaded",
                                                                     "error")}
    console.print(f"{counts['loaded']} loaded, {counts['already loaded']} already loaded, "
                  f"{counts['error']} failed; checks: iceledger export foia_checks", highlight=False)
    for line in report.derived.lines() if report.derived else ():
        console.print(f"derived {line}", highlight=False, soft_wrap=True)
    if report.derived_error:
        err_console.print(f"[bold red]error:[/] {report.derived_error}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@stats_app.command("compare-ddp")
@user_errors
def stats_compare_ddp_command(
    directory: Annotated[Path, typer.Argument(
        help="The Deportation Data Project's reference parse (one parquet per table).",
        file_okay=False)],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Also write every difference as markdown.")] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Compare the loaded workbooks, cell by cell, with the DDP's parse of the same files."""
    from iceledger.sources.stats.ddp_compare import compare_warehouse, render_markdown

    result = compare_warehouse(Warehouse(warehouse), directory)
    for line in result.summary_lines():
        console.print(line, highlight=False, soft_wrap=True)
    if output:
        output.write_text(render_markdown(result), encoding="utf-8")
        console.print(f"wrote every difference to {output}")


@fetch_app.command("stats")
@user_errors
def fetch_stats_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to save the workbook in.",
                                      file_okay=False)] = Path("ice-detention-stats"),
    url: Annotated[str | None, typer.Option(
        "--url", help="Page linking the workbook, or the workbook's own .xlsx address "
                      "(default: ICE's detention-management page).")] = None,
) -> None:
    """Download ICE's current detention-statistics workbook (never overwrites a saved one)."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from iceledger.sources.stats.fetch import DETENTION_MANAGEMENT_URL, fetch_stats

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  console=err_console, transient=True) as bar:
        def track(name: str):
            task = bar.add_task(name, total=None)
            return lambda done, total: bar.update(task, completed=done, total=total)

        outcome = fetch_stats(out, url or DETENTION_MANAGEMENT_URL, progress=track)
    for f in outcome.files:
        verb = "already have" if f.already_had else "saved"
        console.print(f"{verb} {f.path} ({f.size:,} bytes, sha256 {f.sha256[:12]}) from {f.url}",
                      highlight=False, soft_wrap=True)
    for problem in outcome.errors:
        err_console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
    if outcome.errors:
        raise typer.Exit(1)
    console.print(f"next: iceledger ingest stats {out}", highlight=False)


@app.command("derive", rich_help_panel=LOAD_DATA)
@user_errors
def derive_command(warehouse: WarehouseOption = DEFAULT_WAREHOUSE) -> None:
    """Rebuild the derived FOIA tables: arrest episodes, stays, arrest and removal links."""
    from iceledger.sources.foia.derived import derive_warehouse

    for line in derive_warehouse(Warehouse(warehouse)).lines():
        console.print(line, highlight=False, soft_wrap=True)


@stats_app.command("series")
@user_errors
def stats_series_command(
    table: Annotated[str, typer.Argument(help="Monthly stats table, e.g. stats_adp.")],
    value: Annotated[str | None, typer.Option(
        "--value", help="The figure to follow, if the table has several.")] = None,
    versions: Annotated[bool, typer.Option(
        "--versions", help="Every (release, value) version instead of the latest value.")] = False,
    format: Annotated[str, typer.Option("--format", "-f", help="table or csv.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE.")] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Each month's latest published figure and how later releases revised it."""
    import pyarrow.csv as pa_csv

    from iceledger.metrics.backends import duckdb_backend
    from iceledger.metrics.published_series import key_columns, published_series

    if format not in ("table", "csv"):
        raise IceledgerError(f"unknown format {format!r}; use table or csv")
    spec, result = published_series(duckdb_backend(warehouse), table, value, versions)
    if format == "csv":
        if output:
            pa_csv.write_csv(result, output)
            console.print(f"wrote {result.num_rows:,} rows of {table} ({spec.value}) to {output}")
        else:
            pa_csv.write_csv(result, sys.stdout.buffer)
        return
    if not output:
        result = result.select(key_columns(spec, versions))
    shown = _figures_table(f"{table}: {spec.value} as published", result)
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            Console(file=handle, width=250).print(shown)
    else:
        console.print(shown)
    flagged = sum(1 for names in result.column("failed_checks").to_pylist() if names)
    if flagged:
        console.print(f"[yellow]{flagged:,} of {result.num_rows:,} values come from a release "
                      "whose checks failed for this table (column failed checks); details: "
                      "iceledger stats checks", highlight=False, soft_wrap=True)


def _figures_table(title: str, result) -> Table:
    """A result as a terminal table: floats to 6 significant figures, months as YYYY-MM."""
    shown = Table(title=title)
    for name in result.column_names:
        shown.add_column(name.replace("_", " "), overflow="fold")
    for row in result.to_pylist():
        if row.get("month") is not None:
            row["month"] = row["month"].isoformat()[:7]
        shown.add_row(*(f"{v:,.6g}" if isinstance(v, float) else "" if v is None else str(v)
                        for v in row.values()))
    return shown


@stats_app.command("checks")
@user_errors
def stats_checks_command(
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Also write a markdown report listing every failure.")] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Validation checks of the loaded workbooks, and a fresh comparison of their releases."""
    from iceledger.sources.stats.checks import render_markdown, review_warehouse

    review = review_warehouse(Warehouse(warehouse))
    print_checks_summary(review)
    for row in review.checks.to_pylist():
        if row["status"] == "fail":
            console.print(f"[red]fail[/] {row['workbook']}: {row['check']} ({row['table']}): "
                          f"{row['detail']}", highlight=False, soft_wrap=True)
    if output:
        output.write_text(render_markdown(review, warehouse.name), encoding="utf-8")
        console.print(f"wrote the checks report to {output}")


def print_checks_summary(review) -> None:
    counts = review.counts()
    workbooks = len(set(review.checks.column("workbook").to_pylist()))
    console.print(f"checks of {workbooks} loaded workbooks: [red]{counts['fail']:,} failed[/], "
                  f"[yellow]{counts['warn']:,} warnings[/], {counts['pass']:,} passed (details: "
                  "iceledger stats checks --output checks.md)", highlight=False)


@app.command("reconcile", rich_help_panel=NUMBERS)
@user_errors
def reconcile_command(
    tolerance: Annotated[float | None, typer.Option(
        "--tolerance", help="Flag differences larger than PCT percent of the published figure "
        "(default: DEFAULT_TOLERANCE_PCT in metrics/reconciliation.py, 5).", metavar="PCT")] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """FOIA-derived figures against ICE's published workbook figures, flagged beyond a tolerance."""
    from iceledger.metrics.backends import duckdb_backend
    from iceledger.serving.output import synthetic_banner
    from iceledger.metrics.reconciliation import DEFAULT_TOLERANCE_PCT, reconcile

    tolerance = DEFAULT_TOLERANCE_PCT if tolerance is None else tolerance
    # Synthetic FOIA records set against ICE's real figures must say so.
    banner = synthetic_banner(warehouse)
    for metric, result in reconcile(duckdb_backend(warehouse), tolerance):
        if banner:
            console.print(banner, style="bold red", highlight=False, markup=False)
        console.print(_figures_table(
            f"{metric.name}: {metric.title} (tolerance {tolerance:g}%)", result))
        console.print(f"{metric.definition}\nsources: {', '.join(metric.tables)}; unit: "
                      f"{metric.unit}\ncaveats: {' '.join(metric.caveats)}\n",
                      highlight=False, soft_wrap=True)


@app.command("serve", rich_help_panel=START_HERE)
@user_errors
def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless you mean it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    public: Annotated[bool, typer.Option(
        "--public", help="Suppress counts of fewer than --k people (and cells revealing them).")] = False,
    k: Annotated[int, typer.Option("--k", help="Smallest count shown in --public mode.")] = 10,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Serve the dashboard and JSON API (read-only) on the warehouse; see docs/dashboard.md."""
    from iceledger.web.app import serve

    serve(warehouse, host=host, port=port, public=public, k=k,
          announce=lambda line: console.print(line, highlight=False, soft_wrap=True))


metrics_app = typer.Typer(help="The documented metrics.", no_args_is_help=True)
claims_app = typer.Typer(help="The register of public claims.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics", rich_help_panel=NUMBERS)
app.add_typer(claims_app, name="claims", rich_help_panel=NUMBERS)

FactsOption = Annotated[
    Path | None,
    typer.Option("--facts", envvar="ICELEDGER_FACTS_DIR", file_okay=False,
                 help="Folder with your own targets.csv / events.csv / claims.csv."),
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")]
EngineOption = Annotated[str, typer.Option("--engine", help="duckdb, or spark (local).")]


def _print_result(body: str) -> None:
    sys.stdout.write(body if body.endswith("\n") else body + "\n")


@metrics_app.command("list")
@user_errors
def metrics_list_command(warehouse: WarehouseOption = DEFAULT_WAREHOUSE) -> None:
    """Every metric: name, question, unit and what it counts; with a warehouse, whether it has
    the tables each one reads."""
    from iceledger.serving.output import metrics_listing

    store = Warehouse(warehouse)
    console.print(metrics_listing(store.table_names() if store.path.exists() else None))


@app.command("metric", rich_help_panel=NUMBERS)
@user_errors
def metric_command(
    name: Annotated[str, typer.Argument(help="Metric name (see `iceledger metrics list`).")],
    by: Annotated[list[str], typer.Option("--by", help="Break down by DIM (repeatable).")] = [],
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None,
    filters: Annotated[list[str], typer.Option(
        "--filter", help="COLUMN=VALUE, e.g. aor=Atlanta (repeatable).")] = [],
    format: FormatOption = "table",
    engine: EngineOption = "duckdb",
    facts: FactsOption = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Compute one metric; its definition, period and source tables are printed with it."""
    from iceledger.facts import facts_dir
    from iceledger.metrics import MetricParams
    from iceledger.metrics.backends import connect
    from iceledger.serving.output import (
        FORMATS, metric_table, notes, parse_day, parse_filters, run, synthetic_banner, to_csv,
        to_json,
    )

    if format not in FORMATS:
        raise IceledgerError(f"unknown format {format!r}; use {', '.join(FORMATS)}")
    params = MetricParams(by=tuple(by), start=parse_day(start, "--from"),
                          end=parse_day(end, "--to"), filters=parse_filters(filters))
    banner = synthetic_banner(warehouse)
    with facts_dir(facts):
        metric, result = run(name, connect(warehouse, engine), params)
    if format == "json":
        _print_result(to_json(metric, result, params, banner))
        return
    notes_console = err_console if format == "csv" else console
    if banner:
        notes_console.print(banner, style="bold red", highlight=False, markup=False)
    if format == "csv":
        _print_result(to_csv(result))
    else:
        console.print(metric_table(metric, result))
    for line in [*notes(metric, result, params), *([banner] if banner else [])]:
        notes_console.print(line, highlight=False, soft_wrap=True, markup=False)


@claims_app.command("check")
@user_errors
def claims_check_command(
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    engine: EngineOption = "duckdb",
    facts: FactsOption = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Each public claim beside the record, under every definition, with the gap and source."""
    from iceledger.facts import facts_dir
    from iceledger.metrics.backends import connect
    from iceledger.metrics.claims import check_claims
    from iceledger.serving.output import claim_table, claims_json, synthetic_banner

    if format not in ("table", "json"):
        raise IceledgerError(f"unknown format {format!r}; use table or json")
    banner = synthetic_banner(warehouse)
    with facts_dir(facts):
        checks = check_claims(connect(warehouse, engine))
    if format == "json":
        _print_result(claims_json(checks, banner))
        return
    for check in checks:
        if banner:
            console.print(banner, style="bold red", highlight=False, markup=False)
        console.print(claim_table(check))


@app.command("synth", rich_help_panel=LOAD_DATA)
@user_errors
def synth_command(
    scale: Annotated[int, typer.Option(
        "--scale", help="Rows of the latest release's arrests file; other files in proportion.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files to.")],
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files.")] = 0,
    format: Annotated[str, typer.Option("--format", help="xlsx, csv or parquet.")] = "xlsx",
    sheet_rows: Annotated[int | None, typer.Option(
        "--sheet-rows", help="Data rows per xlsx sheet (default: as many as Excel allows).")] = None,
    release: Annotated[list[str] | None, typer.Option(
        "--release", help="Write this release: 2026-03, 2025-07 (the default pair) or 2012-2023 "
        "(written only when named); repeatable.")] = None,
    dataset: Annotated[list[str] | None, typer.Option(
        "--dataset", help="Only this dataset (arrests, stints, ...); repeatable.")] = None,
) -> None:
    """Write SYNTHETIC ICE FOIA releases in the raw layouts (invented records, never real)."""
    from rich.progress import Progress

    from iceledger.synth.releases import write_synthetic_releases

    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("simulating SYNTHETIC months", total=None)
        files = write_synthetic_releases(
            out, scale, seed=seed, fmt=format, sheet_rows=sheet_rows, releases=release,
            datasets=dataset, progress=lambda done, total: bar.update(task, completed=done,
                                                                     total=total))
    table = Table(title=f"SYNTHETIC FOIA files (seed {seed}) - not real ICE records")
    table.add_column("file", overflow="fold")
    for heading in ("release", "dataset", "rows", "sheets"):
        table.add_column(heading, justify="right" if heading in ("rows", "sheets") else "left")
    for f in files:
        table.add_row(f.path.name, f.release, f.dataset, f"{f.rows:,}", str(len(f.rows_per_sheet)))
    console.print(table)
    console.print(f"wrote {len(files)} SYNTHETIC files to {out}")


@app.command("report", rich_help_panel=START_HERE)
@user_errors
def report_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "iceledger-report.html"
    ),
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write a PDF beside it.")] = False,
    k: Annotated[int, typer.Option("--k", help="Suppress counts under k people.")] = 10,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Write a self-contained HTML report (and optionally a PDF) of every metric."""
    from iceledger.report.build import build_report

    with console.status("computing metrics") as status:
        result = build_report(warehouse, out, pdf=pdf, k=k,
                              progress=lambda name: status.update(f"computing {name}"))
    _print_report_result(result)


def _print_report_result(result) -> None:
    views = [v for s in result.sections for v in s.views]
    empty = [v for v in views if not v.rows]
    console.print(f"report: [bold]{result.html_path}[/] ({len(views)} views, {len(empty)} without "
                  f"data, {len(result.claims)} claims checked)")
    if result.pdf_path:
        console.print(f"pdf:    [bold]{result.pdf_path}[/]")
    if result.provenance.synthetic:
        console.print("[bold yellow]SYNTHETIC DATA[/]: the warehouse holds files written by "
                      "`iceledger synth`; the report says so on every page.")


@app.command("demo", rich_help_panel=START_HERE)
@user_errors
def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path(
        "iceledger-demo"
    ),
    scale: Annotated[int, typer.Option("--scale", help="Arrest rows in the synthetic release.")]
    = 4_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same numbers.")] = 2025,
    serve: Annotated[bool, typer.Option("--serve", help="Then open the dashboard.")] = False,
    port: Annotated[int, typer.Option("--port", help="Dashboard port (with --serve).")] = 8000,
) -> None:
    """Run everything offline on a seeded SYNTHETIC release: synth, ingest, metrics, report."""
    from iceledger.demo import run_demo

    with console.status("starting") as status:
        result = run_demo(out, scale=scale, seed=seed, step=lambda text: status.update(text))
    table = Table("figure (SYNTHETIC DATA)", "value", "metric (definition: iceledger metrics list)",
                  title="iceledger demo - SYNTHETIC DATA, not real ICE records")
    for figure, value, metric in result.headlines:
        table.add_row(figure, value, metric)
    console.print(table)
    accounting = [f.accounting for f in result.ingest.files]
    console.print(
        f"{len(result.files)} synthetic files: {sum(a.rows_read for a in accounting):,} rows read = "
        f"{sum(a.rows_loaded for a in accounting):,} loaded + "
        f"{sum(a.rows_quarantined for a in accounting):,} quarantined + "
        f"{sum(a.rows_duplicate for a in accounting):,} exact duplicates flagged"
    )
    derived = result.ingest.derived
    if derived is not None:
        console.print(
            f"derived: {derived.arrests:,} arrest rows -> {derived.arrest_episodes:,} episodes "
            f"({derived.arrest_duplicates:,} re-arrests within 24 h flagged, not deleted); "
            f"{derived.stints:,} stints -> {derived.stays:,} stays ({derived.open_stays:,} open, "
            f"censored at the release date)"
        )
    console.print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    _print_report_result(result.report)
    console.print(f"warehouse: {result.warehouse}  (try: iceledger metric arrests_per_day "
                  f"--warehouse {result.warehouse})")
    if serve:
        from iceledger.web.app import serve as serve_dashboard

        console.print(f"dashboard: http://127.0.0.1:{port}/  (Ctrl-C to stop)")
        serve_dashboard(result.warehouse, host="127.0.0.1", port=port)


def main() -> None:  # pragma: no cover - console entry for `python -m iceledger`
    sys.exit(app())
