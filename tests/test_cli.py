"""The command line as a whole: the help a newcomer sees, the labels its output owes."""

from __future__ import annotations

import shutil

import pyarrow as pa
import typer
from typer.testing import CliRunner

from iceledger.cli import HELP_ORDER, app
from iceledger.sources.stats.ingest import ingest_stats
from iceledger.warehouse import Warehouse


def test_every_command_is_listed_in_a_panel_in_help_order():
    group = typer.main.get_command(app)
    names = group.list_commands(None)
    assert names == list(HELP_ORDER)
    panels = [group.commands[n].rich_help_panel for n in names]
    assert all(panels), dict(zip(names, panels, strict=True))
    # Each panel is one run of the listing: no panel is split by another.
    runs = [p for i, p in enumerate(panels) if i == 0 or p != panels[i - 1]]
    assert runs == ["Start here", "Load data", "Numbers", "Warehouse"]


def test_help_shows_start_here_first():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    shown = [result.output.index(panel) for panel in ("Start here", "Load data", "Numbers",
                                                      "Warehouse")]
    assert shown == sorted(shown)
    assert result.output.index("demo") < result.output.index("Load data")


def test_reconcile_labels_synthetic_records_set_against_real_figures(
    synthetic_warehouse, stats_workbooks, tmp_path
):
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(synthetic_warehouse, warehouse)
    assert not ingest_stats(stats_workbooks[-1:], Warehouse(warehouse)).failed
    result = CliRunner().invoke(app, ["reconcile", "--warehouse", str(warehouse)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    tables = result.output.count("\ncaveats: ")
    assert tables >= 3
    assert result.output.count("SYNTHETIC DATA") == tables


def test_an_exception_no_check_foresaw_is_one_line_unless_debugging(tmp_path, monkeypatch):
    def broken(self, name, fmt, output):
        raise TypeError("a fault\nover two lines")

    monkeypatch.setattr(Warehouse, "export", broken)
    Warehouse(tmp_path / "w.duckdb").replace_table("stats_checks", pa.table({"x": [1]}))
    args = ["export", "stats_checks", "--warehouse", str(tmp_path / "w.duckdb"),
            "--output", str(tmp_path / "out.csv")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert "error: TypeError: a fault over two lines" in line and "ICELEDGER_DEBUG=1" in line
    monkeypatch.setenv("ICELEDGER_DEBUG", "1")
    debugging = CliRunner().invoke(app, args)
    assert isinstance(debugging.exception, TypeError)


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_output_option_takes_the_aliases_the_readme_promises():
    """README: files and folders written are named with --output (--out and -o are aliases)."""
    lacking = []
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if "--output" in param.opts and not {"--out", "-o"} <= set(param.opts):
                lacking.append(" ".join(path))
    assert lacking == []
