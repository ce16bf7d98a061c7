"""The `iceledger` command line. Thin: parses arguments, calls the package, prints results.

Every command that opens a warehouse takes --warehouse PATH (default ./iceledger.duckdb, or
$ICELEDGER_WAREHOUSE).
A user-facing problem prints one red line and exits 1; no traceback.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup
from typer.exceptions import TyperException

from iceledger.errors import IceledgerError
from iceledger.tables import (
    FOIA_CHECKS,
    FOIA_PUBLISHED_TOTALS,
    QUARANTINE,
    STATS_ADP,
    STATS_WORKBOOKS,
)
from iceledger.warehouse import DEFAULT_WAREHOUSE, SYNTHETIC_NOTICE, Warehouse

console = Console()
err_console = Console(stderr=True)

START_HERE, LOAD_DATA, NUMBERS, WAREHOUSE = "Start here", "Load data", "Numbers", "Warehouse"
# The order `iceledger --help` lists commands in (and so its panels), newcomer's first step first.
HELP_ORDER = ("demo", "report", "serve", "fetch", "ingest", "inspect", "synth", "derive", "metrics",
              "metric", "claims", "reconcile", "simulate", "stats", "tables", "sources", "export",
              "lake")


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


# Every problem is shown on one line, whatever the input held: line breaks become spaces, and
# text a file makes as long as it likes (a cell of megabytes quoted in a reason) is cut.
MAX_MESSAGE_CHARS = 500
# Set to see the traceback of an exception iceledger did not foresee (else one line).
DEBUG_VARIABLE = "ICELEDGER_DEBUG"


def one_line(text: object) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_MESSAGE_CHARS else f"{text[:MAX_MESSAGE_CHARS]} ...(cut)"


def quarantine_line(file_name: str, count: int, first) -> str:
    """Where a file's first quarantined row is and why (`first` has sheet, row_number, cell and
    reason: a FOIA row's cell is a column name where there is no sheet)."""
    where = [f"sheet {first.sheet.strip()!r}" if first.sheet else None,
             (f"cell {first.cell}" if first.sheet else f"column {first.cell!r}")
             if first.cell else None,
             f"row {first.row_number}" if first.row_number is not None else None]
    return one_line(f"{file_name}: {count:,} quarantined, the first at "
                    f"{', '.join(w for w in where if w)}: {first.reason} (all of them: "
                    f"iceledger export {QUARANTINE})")


@contextlib.contextmanager
def collecting_only_new_objects():
    """While the block runs, the garbage collector passes over what was alive before it.

    A load makes hundreds of thousands of short-lived objects, and each full collection they
    set off walks every object alive, most of them the modules, classes and functions of the
    libraries imported (Typer's pydantic, DuckDB, Arrow), which live as long as the process.
    The collector still runs over everything the block makes; afterwards (a command run
    inside a longer process, as tests do) all objects are collectable again.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def user_errors(command):
    """Show IceledgerError as one line and exit 1, instead of a traceback. Any other exception
    is one line too, naming itself as unforeseen (DEBUG_VARIABLE=1 shows its traceback)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except IceledgerError as exc:
            err_console.print(f"[bold red]error:[/] {one_line(exc)}", highlight=False,
                              soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted:[/] the warehouse is unchanged by the "
                              "unfinished load", highlight=False)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except Exception as exc:  # noqa: BLE001 - the last resort: still one line
            if os.environ.get(DEBUG_VARIABLE):
                raise
            err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {one_line(exc)} "
                              f"(a problem iceledger did not foresee; {DEBUG_VARIABLE}=1 shows "
                              "where, and a report of it helps)", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


@app.command("export", rich_help_panel=WAREHOUSE)
@user_errors
def export_command(
    table: Annotated[str, typer.Argument(help="Warehouse table to write.")],
    format: Annotated[str, typer.Option("--format", "-f", help="csv or parquet.")] = "csv",
    output: Annotated[
        Path | None,
        typer.Option("--output", "--out", "-o", help="Output file (default TABLE.FORMAT)."),
    ] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Write any warehouse table to CSV or Parquet."""
    target = output or Path(f"{table}.{format}")
    store = Warehouse(warehouse)
    rows = store.export(table, format, target)
    console.print(f"wrote {rows:,} rows of {table} to {target}")
    if store.synthetic():
        console.print(f"[bold yellow]{SYNTHETIC_NOTICE}[/] Label the export as synthetic "
                      "wherever it goes.", highlight=False)


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
    with collecting_only_new_objects(), Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("workbooks", total=len(files))
        summary = ingest_stats(files, Warehouse(warehouse), progress=lambda _: bar.advance(task))
    for f in summary.files:
        console.print(f"{f.status} {f.path.name}: {f.rows_loaded:,} values loaded, "
                      f"{f.rows_quarantined:,} quarantined, {len(f.warnings)} warnings",
                      highlight=False, soft_wrap=True)
        if f.first_quarantined is not None:
            first = quarantine_line(f.path.name, f.rows_quarantined, f.first_quarantined)
            console.print(f"[yellow]quarantined[/] {first}", highlight=False, soft_wrap=True)
        if f.unrecognised:
            # Figures no table claims: a table ICE added or reworded, loaded only as printed.
            console.print(f"[yellow]unrecognised[/] {f.path.name}: {len(f.unrecognised)} "
                          f"block(s) of figures in no known table, the first: "
                          f"{one_line(f.unrecognised[0])} (all of them: iceledger stats "
                          "checks)", highlight=False, soft_wrap=True)
        if f.new_categories:
            # A category ICE added (an agency beside ICE and CBP): loaded as its own, and
            # counted by the add-up checks, but no metric maps it yet.
            console.print(f"[yellow]new categories[/] {f.path.name}: "
                          f"{len(f.new_categories)} value(s) no layout declares, loaded as "
                          f"their own, the first: {one_line(f.new_categories[0])} (all of "
                          "them: iceledger stats checks)", highlight=False, soft_wrap=True)
        for problem in f.errors:
            err_console.print(f"[bold red]error:[/] {one_line(problem)}", highlight=False,
                              soft_wrap=True)
    console.print(f"{summary.count('loaded')} loaded, {summary.count('unchanged')} already "
                  f"loaded, {summary.count('failed')} failed; warnings and quarantine: "
                  f"iceledger export {STATS_WORKBOOKS} / {QUARANTINE}", highlight=False)
    if summary.review is not None:
        print_checks_summary(summary.review, warehouse)
    if summary.failed:
        raise typer.Exit(1)


@ingest_app.command("foia")
@user_errors
def ingest_foia_command(
    paths: Annotated[list[Path], typer.Argument(
        help="FOIA release files (.xlsx, .xls, .xlsb, .ods, .csv, .parquet), or folders.")],
    release: Annotated[str | None, typer.Option(
        "--release", help="Release date YYYY-MM-DD, for files whose name carries none.")] = None,
    facility_reference: Annotated[list[Path] | None, typer.Option(
        "--facility-reference",
        help="CSV/TSV with a *facility_code column of known facility codes (repeatable).")] = None,
    derive: Annotated[bool, typer.Option(
        "--derive/--no-derive",
        help="Rebuild the derived tables after loading. --no-derive: load several batches "
             "first, then run `iceledger derive` once.")] = True,
    layout: Annotated[Path | None, typer.Option(
        "--layout", help="A declared layout file (TOML) for a production in a layout iceledger "
                         "does not know; `iceledger inspect FILE` prints one to edit.")] = None,
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
                             derive=derive, layout=layout,
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
            elif c["check"] == "ice_summary_totals":
                console.print(f"[green]pass[/] {f.path.name}: {c['dataset']} records equal "
                              f"ICE's own Summary sheet {c['compared']} "
                              f"({c['total_rows']:,}; {FOIA_PUBLISHED_TOTALS})",
                              highlight=False, soft_wrap=True)
        if f.first_quarantined is not None:
            first = quarantine_line(f.path.name, f.accounting.rows_quarantined,
                                    f.first_quarantined)
            console.print(f"[yellow]quarantined[/] {first}", highlight=False, soft_wrap=True)
        for warning in f.warnings:
            console.print(f"[yellow]warning:[/] {one_line(warning)}", highlight=False,
                          soft_wrap=True)
        if f.error:
            err_console.print(f"[bold red]error:[/] {one_line(f.error)}", highlight=False,
                              soft_wrap=True)
    counts = {s: sum(f.status == s for f in report.files) for s in ("loaded", "already loaded",
                                                                     "error")}
    console.print(f"{counts['loaded']} loaded, {counts['already loaded']} already loaded, "
                  f"{counts['error']} failed; checks: iceledger export {FOIA_CHECKS}",
                  highlight=False)
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
        "--output", "--out", "-o", help="Also write every difference as markdown.")] = None,
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
    out: Annotated[Path, typer.Option("--output", "--out", "-o",
                                      help="Folder to save the workbook in.",
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


@app.command("inspect", rich_help_panel=LOAD_DATA)
@user_errors
def inspect_command(
    path: Annotated[Path, typer.Argument(
        help="A FOIA production file (.xlsx, .xls, .xlsb, .ods, .csv, .parquet).")],
    layout: Annotated[Path | None, typer.Option(
        "--layout", help="Read it with this declared layout file, to try one out.")] = None,
) -> None:
    """Show how each sheet of a FOIA production reads (title rows, header row, mapped and
    unmapped columns, dataset) and print a layout file to edit for `ingest foia --layout`."""
    from iceledger.sources.foia.declared import declared_catalog
    from iceledger.sources.foia.inspect import describe, inspect_file, layout_file
    from iceledger.sources.foia.layouts import catalog

    cat = declared_catalog(layout) if layout is not None else catalog()
    readings = inspect_file(path, cat)
    for line in describe(path, readings):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    console.print("", highlight=False)
    console.print(layout_file(path, readings), highlight=False, soft_wrap=True, markup=False)


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
    table: Annotated[str, typer.Argument(help=f"Monthly stats table, e.g. {STATS_ADP}.")],
    value: Annotated[str | None, typer.Option(
        "--value", help="The figure to follow, if the table has several.")] = None,
    versions: Annotated[bool, typer.Option(
        "--versions", help="Every (release, value) version instead of the latest value.")] = False,
    format: FormatOption = "table",
    output: Annotated[Path | None, typer.Option(
        "--output", "--out", "-o", help="Write to FILE.")] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Each month's latest published figure and how later releases revised it."""
    import pyarrow.csv as pa_csv

    from iceledger.metrics.backends import duckdb_backend
    from iceledger.metrics.published_series import key_columns, published_series

    from iceledger.serving.output import FORMATS, json_rows

    if format not in FORMATS:
        raise IceledgerError(f"unknown format {format!r}; use {', '.join(FORMATS)}")
    spec, result = published_series(duckdb_backend(warehouse), table, value, versions)
    if format == "json":
        body = json.dumps(json_rows(result), indent=2)
        if output:
            output.write_text(body + "\n", encoding="utf-8")
            console.print(f"wrote {result.num_rows:,} rows of {table} ({spec.value}) to {output}")
        else:
            _print_result(body)
        return
    if format == "csv":
        if output:
            pa_csv.write_csv(result, output)
            console.print(f"wrote {result.num_rows:,} rows of {table} ({spec.value}) to {output}")
        else:
            pa_csv.write_csv(result, sys.stdout.buffer)
        return
    undated = (sum(1 for reason in result.column("left_out").to_pylist() if reason)
               if "left_out" in result.column_names else 0)
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
    if undated:
        console.print(f"[yellow]{undated:,} version(s) stand outside the order, without a "
                      "release number: figures of a hidden sheet of another fiscal year that "
                      "nothing dates, never the latest value (column left_out with --format "
                      "csv)", highlight=False, soft_wrap=True)


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
        "--output", "--out", "-o",
        help="Also write a markdown report listing every failure.")] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Validation checks of the loaded workbooks, and a fresh comparison of their releases."""
    from iceledger.sources.stats.checks import render_markdown, review_warehouse

    review = review_warehouse(Warehouse(warehouse))
    print_checks_summary(review, warehouse)
    for row in review.checks.to_pylist():
        if row["status"] == "fail":
            console.print(f"[red]fail[/] {row['workbook']}: {row['check']} ({row['table']}): "
                          f"{row['detail']}", highlight=False, soft_wrap=True)
    if output:
        output.write_text(render_markdown(review, warehouse.name), encoding="utf-8")
        console.print(f"wrote the checks report to {output}")


def print_checks_summary(review, warehouse: Path = DEFAULT_WAREHOUSE) -> None:
    counts = review.counts()
    workbooks = len(set(review.checks.column("workbook").to_pylist()))
    # The suggested command must run as printed: it names the warehouse unless it is the default.
    where = "" if warehouse == DEFAULT_WAREHOUSE else f" --warehouse {warehouse}"
    console.print(f"checks of {workbooks} loaded workbooks: [red]{counts['fail']:,} failed[/], "
                  f"[yellow]{counts['warn']:,} warnings[/], {counts['pass']:,} passed (details: "
                  f"iceledger stats checks --output checks.md{where})", highlight=False,
                  soft_wrap=True)


@app.command("reconcile", rich_help_panel=NUMBERS)
@user_errors
def reconcile_command(
    tolerance: Annotated[float | None, typer.Option(
        "--tolerance", help="Flag differences larger than PCT percent of the published figure, in "
        "every era (default: the gap measured per measure and era, TOLERANCES in "
        "metrics/reconciliation.py).", metavar="PCT")] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """FOIA-derived figures against ICE's published workbook figures, flagged beyond the usual gap
    measured for each measure and era."""
    from iceledger.metrics.backends import duckdb_backend
    from iceledger.serving.output import synthetic_banner
    from iceledger.metrics.reconciliation import reconcile

    band = "measured gap per era" if tolerance is None else f"tolerance {tolerance:g}%"
    # Synthetic FOIA records set against ICE's real figures must say so.
    banner = synthetic_banner(warehouse)
    for metric, result in reconcile(duckdb_backend(warehouse), tolerance):
        if banner:
            console.print(banner, style="bold red", highlight=False, markup=False)
        console.print(_figures_table(f"{metric.name}: {metric.title} ({band})", result))
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
                 help="Folder with your own facts files (targets, events, claims, capacity, "
                 "cost_rates, deaths .csv); the others stay the shipped ones."),
]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")]
EngineOption = Annotated[str, typer.Option(
    "--engine", help="duckdb, or spark (local unless --spark-master names a cluster).")]
SparkMasterOption = Annotated[str | None, typer.Option(
    "--spark-master", envvar="ICELEDGER_SPARK_MASTER",
    help="With --engine spark: a standalone cluster's master, spark://HOST:PORT.")]
LakeOption = Annotated[Path | None, typer.Option(
    "--lake", envvar="ICELEDGER_LAKE", file_okay=False,
    help="With --engine spark: a lake written by `iceledger lake export` (on storage the "
         "cluster can read); default: the warehouse, exported for the run.")]


def _print_result(body: str) -> None:
    sys.stdout.write(body if body.endswith("\n") else body + "\n")


@metrics_app.command("list")
@user_errors
def metrics_list_command(
    long: Annotated[bool, typer.Option("--long", help="Unit and first sentence of each "
                                       "definition too.")] = False,
    format: FormatOption = "table",
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Every metric: name and title by question (--long: unit and definition too); with a
    warehouse, whether it has the tables each one reads."""
    from iceledger.serving.output import metrics_listing, metrics_rows, rows_output

    store = Warehouse(warehouse)
    if format == "table":
        console.print(metrics_listing(long, store.table_names() if store.path.exists() else None))
    else:
        _print_result(rows_output(metrics_rows(), format))


@metrics_app.command("values")
@user_errors
def metrics_values_command(
    dimension: Annotated[str, typer.Argument(help="A filter, e.g. aor or criminality.")],
    metric: Annotated[str | None, typer.Option("--metric", help="For this metric only.")] = None,
    format: FormatOption = "table",
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """The values --filter DIMENSION=... accepts in this warehouse."""
    from iceledger.serving.output import filter_values, rows_output

    values = filter_values(warehouse, dimension, metric)
    if format == "table":
        _print_result("\n".join(values) if values else f"no values of {dimension} loaded")
    else:
        _print_result(rows_output([{dimension: v} for v in values], format))


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
    spark_master: SparkMasterOption = None,
    lake: LakeOption = None,
    facts: FactsOption = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Compute one metric; its definition, period and source tables are printed with it."""
    from iceledger.facts import facts_dir
    from iceledger.metrics import MetricParams
    from iceledger.metrics.backends import connect
    from iceledger.serving.output import (
        FORMATS, check_filter_values, metric_table, notes, parse_day, parse_filters, run,
        synthetic_banner, to_csv, to_json,
    )

    if format not in FORMATS:
        raise IceledgerError(f"unknown format {format!r}; use {', '.join(FORMATS)}")
    params = MetricParams(by=tuple(by), start=parse_day(start, "--from"),
                          end=parse_day(end, "--to"), filters=parse_filters(filters))
    if params.filters and warehouse.is_file():
        check_filter_values(warehouse, name, params.filters)
    banner = synthetic_banner(warehouse, lake if engine == "spark" else None)
    with facts_dir(facts):
        metric, result = run(name, connect(warehouse, engine, lake=lake,
                                           spark_master=spark_master), params)
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
    format: FormatOption = "table",
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    lake: LakeOption = None,
    facts: FactsOption = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Each public claim beside the record, under every definition, with the gap and source."""
    from iceledger.facts import facts_dir
    from iceledger.metrics.backends import connect
    from iceledger.metrics.claims import check_claims
    from iceledger.serving.output import (
        FORMATS, claim_rows, claim_table, claims_json, rows_output, synthetic_banner,
    )

    if format not in FORMATS:
        raise IceledgerError(f"unknown format {format!r}; use {', '.join(FORMATS)}")
    banner = synthetic_banner(warehouse, lake if engine == "spark" else None)
    with facts_dir(facts):
        checks = check_claims(connect(warehouse, engine, lake=lake, spark_master=spark_master))
    if format == "json":
        _print_result(claims_json(checks, banner))
        return
    if format == "csv":
        if banner:
            err_console.print(banner, style="bold red", highlight=False, markup=False)
        _print_result(rows_output(claim_rows(checks), "csv"))
        return
    for check in checks:
        if banner:
            console.print(banner, style="bold red", highlight=False, markup=False)
        console.print(claim_table(check))


lake_app = typer.Typer(help="The warehouse as a Parquet lake, for Spark or any engine.",
                       no_args_is_help=True)
app.add_typer(lake_app, name="lake", rich_help_panel=WAREHOUSE)


@lake_app.command("export")
@user_errors
def lake_export_command(
    directory: Annotated[Path, typer.Argument(help="The lake's folder (made if absent).")],
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Write every table as Hive-partitioned Parquet (by release and fiscal year) + manifest.json.

    Incremental: only partitions whose rows changed are rewritten.
    """
    from iceledger.lake import MANIFEST, export_lake

    store = Warehouse(warehouse)
    store.require()
    result = export_lake(store, directory)
    console.print(f"lake {directory}: {len(result.tables)} tables, "
                  f"{sum(result.tables.values()):,} rows; partitions: "
                  f"{result.partitions_written} written, {result.partitions_kept} unchanged, "
                  f"{result.partitions_removed} removed; manifest: {directory / MANIFEST}",
                  highlight=False)
    if store.synthetic():
        console.print(f"[bold yellow]{SYNTHETIC_NOTICE}[/] The manifest says so too.",
                      highlight=False)


@app.command("synth", rich_help_panel=LOAD_DATA)
@user_errors
def synth_command(
    scale: Annotated[int, typer.Option(
        "--scale", help="Rows of the latest release's arrests file; other files in proportion.")],
    out: Annotated[Path, typer.Option("--output", "--out", "-o",
                                      help="Folder to write the files to.")],
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
    out: Annotated[Path, typer.Option("--output", "--out", "-o",
                                      help="HTML file to write.")] = Path(
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
    console.print(f"report: [bold]{result.html_path}[/] ({result.summary()}; "
                  f"{len(result.claims)} claims checked)")
    if result.pdf_path:
        console.print(f"pdf:    [bold]{result.pdf_path}[/]")
    if result.provenance.synthetic:
        console.print(f"[bold yellow]{SYNTHETIC_NOTICE}[/] The report says so on every page.",
                      highlight=False)


@app.command("demo", rich_help_panel=START_HERE)
@user_errors
def demo_command(
    out: Annotated[Path, typer.Option("--output", "--out", "-o",
                                      help="Folder for the demo's files.")] = Path(
        "iceledger-demo"
    ),
    scale: Annotated[int | None, typer.Option(
        "--scale", help="Arrest rows in the synthetic release (default 60,000: enough that "
        "daily national figures are not suppressed).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same numbers.")] = 2025,
    serve: Annotated[bool, typer.Option("--serve", help="Then open the dashboard.")] = False,
    port: Annotated[int, typer.Option("--port", help="Dashboard port (with --serve).")] = 8000,
) -> None:
    """Run everything offline on a seeded SYNTHETIC release: synth, ingest, metrics, report."""
    from iceledger.demo import run_demo

    with console.status("starting") as status:
        sized = {"scale": scale} if scale is not None else {}
        result = run_demo(out, seed=seed, step=lambda text: status.update(text), **sized)
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
    if result.workbooks:
        console.print(
            f"{len(result.workbooks)} synthetic detention-statistics workbooks, drawn from those "
            f"records: {sum(f.rows_loaded for f in result.workbooks):,} figures loaded, "
            f"{sum(f.rows_quarantined for f in result.workbooks):,} quarantined")
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


simulate_app = typer.Typer(
    help="What another enforcement strategy would have cost: a simulator fitted on the warehouse "
         "(docs/methodology.md, 'Strategy simulator').",
    invoke_without_command=True,
)
app.add_typer(simulate_app, name="simulate", rich_help_panel=NUMBERS)


@simulate_app.callback()
@user_errors
def simulate_command(
    ctx: typer.Context,
    strategies: Annotated[list[str], typer.Option(
        "--strategy", "-s", help="observed, volume, targeted or a strategy .toml file "
        "(repeatable; default: observed, volume and targeted).")] = [],
    target: Annotated[float | None, typer.Option(
        "--target", help="Volume strategy: ICE arrests per day (default: targets.csv's latest "
        "national target, 3,000 since May 2025; records of part of the country need their "
        "own).")] = None,
    fill: Annotated[str, typer.Option(
        "--fill", help="Targeted strategy fills: same-budget (as volume) or funded-beds.")]
    = "same-budget",
    beds: Annotated[float | None, typer.Option(
        "--beds", help="Funded beds (default: capacity.csv's, where a sourced count is in force)."
    )] = None,
    days: Annotated[int, typer.Option("--days", help="Days to simulate.")] = 365,
    runs: Annotated[int, typer.Option("--runs", help="Stochastic runs.")] = 1000,
    capacity: Annotated[str, typer.Option(
        "--capacity", help="overrun (hold everyone, report people beyond the funded beds) or "
        "turn-away (book in only as many as the free beds take).")] = "overrun",
    start: Annotated[str | None, typer.Option(
        "--from", help="First simulated day (default: where the records end); the model is "
        "fitted on the records before it.")] = None,
    daily: Annotated[bool, typer.Option(
        "--daily", help="CSV: one row per strategy, day and measure instead of the summary.")]
    = False,
    format: FormatOption = "table",
    facts: FactsOption = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Simulate strategies: population, bed-days, cost, removals, with 90% intervals."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    from iceledger.facts import facts_dir
    from iceledger.metrics.backends import connect
    from iceledger.serving.output import FORMATS, parse_day, synthetic_banner
    from iceledger.simulate import output
    from iceledger.simulate.estimate import NotMeasurable, estimate
    from iceledger.simulate.solve import simulate, steady_state
    from iceledger.simulate.strategies import STRATEGIES, scenarios

    if format not in FORMATS:
        raise IceledgerError(f"unknown format {format!r}; use {', '.join(FORMATS)}")
    if days < 1 or runs < 1:
        raise IceledgerError("--days and --runs take a positive number")
    banner = synthetic_banner(warehouse)
    with facts_dir(facts):
        try:
            fitted = estimate(connect(warehouse), start=parse_day(start, "--from"))
        except NotMeasurable as refused:
            raise IceledgerError(f"{refused}. With ICE's workbooks alone, `iceledger simulate "
                                 "backtest` runs the one check they support.") from None
        chosen = scenarios(fitted, strategies or list(STRATEGIES), days, target, fill, beds)
        results = [*(steady_state(s) for s in chosen),
                   *(simulate(s, runs=runs, capacity=capacity) for s in chosen)]
    rows = output.summary_rows(results)
    notes = output.model_notes(fitted, results)
    if format == "json":
        _print_result(json.dumps({
            "synthetic": banner is not None, "banner": banner, "summary": rows,
            "daily": [r for result in results if result.solver == "stochastic"
                      for r in output.daily_rows(result)],
            "field_offices": [r for result in results for r in output.office_rows(result)],
            "notes": notes,
        }, indent=1))
        return
    notes_console = err_console if format == "csv" else console
    if banner:
        notes_console.print(banner, style="bold red", highlight=False, markup=False)
    if format == "csv":
        daily_rows = [r for result in results if result.solver == "stochastic"
                      for r in output.daily_rows(result)]
        _print_result(output.to_csv(daily_rows if daily else rows))
    else:
        for table in output.summary_tables(rows):
            console.print(table)
    for line in [*notes, *([banner] if banner else [])]:
        notes_console.print(line, highlight=False, soft_wrap=True, markup=False)


@simulate_app.command("backtest")
@user_errors
def simulate_backtest_command(
    cutoff: Annotated[str, typer.Option(
        "--cutoff", help="Fit before this day, drive and compare after it.")] = "2025-05-21",
    runs: Annotated[int, typer.Option("--runs", help="Stochastic runs.")] = 1000,
    format: FormatOption = "table",
    facts: FactsOption = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
) -> None:
    """Fit before the cutoff, drive with what was observed after it, print the error (MAPE)."""
    import json

    from iceledger.facts import facts_dir
    from iceledger.metrics.backends import connect
    from iceledger.serving.output import FORMATS, parse_day, synthetic_banner
    from iceledger.simulate import output
    from iceledger.simulate.backtest import backtest

    if format not in FORMATS:
        raise IceledgerError(f"unknown format {format!r}; use {', '.join(FORMATS)}")
    banner = synthetic_banner(warehouse)
    with facts_dir(facts):
        result = backtest(connect(warehouse), parse_day(cutoff, "--cutoff"), runs=runs)
    summary = output.backtest_summary(result)
    if format == "json":
        _print_result(json.dumps({"synthetic": banner is not None, "banner": banner, **summary,
                                  "rows": output.backtest_rows(result)}, indent=1))
        return
    notes_console = err_console if format == "csv" else console
    if banner:
        notes_console.print(banner, style="bold red", highlight=False, markup=False)
    if format == "csv":
        _print_result(output.to_csv(output.backtest_rows(result)))
    else:
        console.print(output.backtest_table(result))
    lines = [*(e["verdict"] + f" (source: {e['source']})" for e in summary["errors"]),
             *(f"Can: {line}" for line in result.can),
             *(f"Cannot: {line}" for line in result.cannot),
             *result.assumptions, *([banner] if banner else [])]
    for line in lines:
        notes_console.print(line, highlight=False, soft_wrap=True, markup=False)
