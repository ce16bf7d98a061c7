"""`iceledger metrics list`, `iceledger metric NAME ...` and `iceledger claims check`.

The warehouse: one release covering 1-10 March 2025 with five arrest episodes (Atlanta: convicted
on 1 March, neither on 2 March; Boston: pending on 2 March, neither on 5 March and 9 March).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from iceledger import cli
from iceledger.cli import app
from iceledger.warehouse import RowAccounting, SourceLoad, Warehouse, file_sha256, mark_derived

C, P, N = "Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator"
runner = CliRunner()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    rows = [(1, "Atlanta", C), (2, "Atlanta", N), (2, "Boston", P), (5, "Boston", N),
            (9, "Boston", N)]
    arrests = pa.table(
        {
            "release": ["2025-03-11"] * len(rows),
            "apprehension_date": pa.array([datetime(2025, 3, d, 10) for d, _, _ in rows],
                                          pa.timestamp("us")),
            "aor": [a for _, a, _ in rows],
            "criminality": [c for _, _, c in rows],
            "arrest_setting": ["custodial"] * len(rows),
            "is_duplicate": [False] * len(rows),
        }
    )
    releases = pa.table({"release": ["2025-03-11"], "coverage_start": [date(2025, 3, 1)],
                         "coverage_end": [date(2025, 3, 10)]})
    path = tmp_path_factory.mktemp("cli") / "w.duckdb"
    Warehouse(path).replace_table("foia_arrests", arrests)
    Warehouse(path).replace_table("foia_releases", releases)
    return str(path)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    # Rich sizes tables to the terminal; a fixed width keeps the tests independent of the runner.
    for console in (cli.console, cli.err_console):
        monkeypatch.setattr(console, "width", 250)


def _run(*args: str):
    return runner.invoke(app, list(args))


def _fails_with_one_line(result, message: str) -> None:
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_metrics_list_is_one_line_a_metric_and_long_gives_unit_and_definition():
    from iceledger.metrics.registry import QUESTIONS, REGISTRY

    short = _run("metrics", "list")
    assert short.exit_code == 0
    lines = short.stdout.strip().splitlines()
    # A heading per question, a line per metric, and the caption pointing to --long.
    assert len(lines) <= len(REGISTRY) + len(QUESTIONS) + 2
    for name in ("arrests_per_day", "arrests_vs_target", "field_office_ranking",
                 "arrest_criminality", "arrest_criminality_shift", "detained_criminality"):
        assert any(line.split()[:1] == [name] for line in lines), name
    assert "--long" in short.stdout
    result = _run("metrics", "list", "--long")
    assert "ICE arrests per calendar day from the FOIA arrest records" in result.stdout
    assert "With 7- and 28-day trailing means" not in result.stdout, "first sentence only"
    listed = json.loads(_run("metrics", "list", "--format", "json").stdout)
    assert {m["name"] for m in listed} == set(REGISTRY)


def test_a_filter_value_not_in_the_warehouse_is_refused_with_the_allowed_values(warehouse):
    result = _run("metric", "arrests_per_day", "--filter", "aor=atlanta",
                  "--warehouse", warehouse)
    _fails_with_one_line(result, "--filter aor='atlanta': no such value")
    assert "allowed: Atlanta, Boston" in result.stderr
    values = _run("metrics", "values", "aor", "--metric", "arrests_per_day",
                  "--warehouse", warehouse)
    assert values.exit_code == 0 and values.stdout.split() == ["Atlanta", "Boston"]
    every = _run("metrics", "values", "aor", "--format", "csv", "--warehouse", warehouse)
    assert every.stdout.split() == ['"aor"', '"Atlanta"', '"Boston"']


def test_a_mistyped_metric_name_gets_a_suggestion(warehouse):
    result = _run("metric", "arests_per_day", "--warehouse", warehouse)
    _fails_with_one_line(result, "did you mean arrests_per_day")


def test_metric_as_csv_keeps_stdout_plain_and_notes_on_stderr(warehouse):
    result = _run("metric", "arrests_per_day", "--by", "aor", "--from", "2025-03-02",
                  "--to", "2025-03-05", "--format", "csv", "--warehouse", warehouse)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {(r["date"], r["aor"]): int(r["arrests"]) for r in rows if r["arrests"] != "0"} == {
        ("2025-03-02", "Atlanta"): 1, ("2025-03-02", "Boston"): 1, ("2025-03-05", "Boston"): 1
    }
    assert "definition: ICE arrests per calendar day" in result.stderr
    assert "period: asked 2025-03-02 to 2025-03-05; rows cover 2025-03-02 to 2025-03-05" in (
        result.stderr)
    assert "source tables: foia_arrests, foia_releases" in result.stderr


def test_metric_as_json_carries_definition_period_and_rows(warehouse):
    result = _run("metric", "arrest_criminality_period", "--filter", "aor=Boston",
                  "--format", "json", "--warehouse", warehouse)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["metric"] == "arrest_criminality_period"
    assert document["params"]["filters"] == {"aor": ["Boston"]}
    assert document["tables"] == ["foia_arrests", "foia_releases"]
    assert "'no conviction and no charge' counts neither" in document["definition"]
    [row] = document["rows"]
    assert (row["arrests"], row["pending_charges"], row["other_immigration_violator"]) == (3, 1, 2)
    assert row["no_conviction_share"] == 1.0
    assert row["no_conviction_no_charge_share"] == pytest.approx(2 / 3)


def test_metric_as_table_prints_the_numbers_then_what_they_mean(warehouse):
    result = _run("metric", "arrest_criminality", "--warehouse", warehouse)
    assert result.exit_code == 0, result.stderr
    assert "2025-03" in result.stdout
    assert "80.0%" in result.stdout  # no conviction: 4 of 5
    assert "60.0%" in result.stdout  # no conviction and no charge: 3 of 5
    assert "definition:" in result.stdout and "source tables:" in result.stdout
    assert "caveat:" in result.stdout


def test_metric_reads_targets_from_a_facts_folder(warehouse, tmp_path):
    (tmp_path / "targets.csv").write_text(
        "target_id,effective_from,effective_to,date_note,scope,arrests_per_day,status,"
        "description,source,source_date,url\n"
        "test-target,2025-03-01,,,national,2,primary,two a day,a test,2025-03-01,\n"
    )
    result = _run("metric", "arrests_vs_target", "--to", "2025-03-02", "--format", "json",
                  "--facts", str(tmp_path), "--warehouse", warehouse)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [(r["date"], r["target"], r["attainment_pct"]) for r in rows] == [
        ("2025-03-01", "test-target", 50.0), ("2025-03-02", "test-target", 100.0)
    ]


def test_numbers_from_synthetic_sources_say_so_in_every_format(tmp_path):
    source = tmp_path / "synthetic_arrests.xlsx"
    source.write_bytes(b"invented records")
    arrests = pa.table({
        "release": ["2025-03-11"],
        "apprehension_date": pa.array([datetime(2025, 3, 1, 10)], pa.timestamp("us")),
        "criminality": [C],
        "is_duplicate": [False],
    })
    path = tmp_path / "w.duckdb"
    Warehouse(path).load(SourceLoad(
        path=source, sha256=file_sha256(source), kind="foia", tables={"foia_arrests": arrests},
        accounting=RowAccounting(rows_read=1, rows_loaded=1), dataset="arrests", synthetic=True,
    ))
    # The row carries its duplicate flag already, as a derive would have set it.
    with Warehouse(path).connect() as con:
        mark_derived(con, stale=False)
    table = _run("metric", "arrests_per_day", "--warehouse", str(path))
    assert table.stdout.startswith("SYNTHETIC DATA") and table.stdout.count("SYNTHETIC DATA") == 2
    as_csv = _run("metric", "arrests_per_day", "--format", "csv", "--warehouse", str(path))
    assert "SYNTHETIC" not in as_csv.stdout and "SYNTHETIC DATA" in as_csv.stderr
    as_json = json.loads(_run("metric", "arrests_per_day", "--format", "json",
                              "--warehouse", str(path)).stdout)
    assert as_json["synthetic"] is True and "invented records" in as_json["banner"]
    claims = _run("claims", "check", "--warehouse", str(path))
    statuses = ("checked", "no data", "not checked")
    shown = sum(claims.stdout.count(f"[{status}]") for status in statuses)
    assert shown and claims.stdout.count("SYNTHETIC DATA") == shown


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("metric", "arrests_per_fortnight"), "no metric named 'arrests_per_fortnight'"),
        (("metric", "arrests_per_day", "--by", "gender"), "cannot be broken down by gender"),
        (("metric", "arrests_per_day", "--filter", "gender=F"), "cannot be filtered by gender"),
        (("metric", "arrests_per_day", "--filter", "aor"), "write COLUMN=VALUE"),
        (("metric", "arrests_per_day", "--from", "03/01/2025"), "--from '03/01/2025': not a date"),
        (("metric", "arrests_per_day", "--from", "2025-03-05", "--to", "2025-03-01"),
         "is after --to"),
        (("metric", "arrests_per_day", "--format", "xml"), "unknown format 'xml'"),
        (("metric", "removals_per_day"), "the warehouse has no table 'foia_removals'"),
    ],
)
def test_bad_metric_requests_are_one_line(warehouse, args, message):
    _fails_with_one_line(_run(*args, "--warehouse", warehouse), message)


def test_a_missing_warehouse_is_one_line(tmp_path):
    _fails_with_one_line(
        _run("metric", "arrests_per_day", "--warehouse", str(tmp_path / "none.duckdb")),
        "no warehouse here yet",
    )


def test_claims_check_prints_claimed_observed_gap_and_source(warehouse, tmp_path):
    (tmp_path / "claims.csv").write_text(
        "claim_id,date,who,wording,source,url,metric,period_start,period_end,claimed_value,"
        "claimed_definition,note\n"
        "march,2025-03,An Official,Half of those arrested were criminals,A briefing,"
        "https://example.org/briefing,arrest_criminality_period,2025-03-01,2025-03-10,50%,"
        "convicted_or_pending,\n"
    )
    table = _run("claims", "check", "--facts", str(tmp_path), "--warehouse", warehouse)
    assert table.exit_code == 0, table.stderr
    for text in ("march [checked]", "Half of those arrested were criminals", "A briefing",
                 "https://example.org/briefing", "convicted only", "20.0%", "40.0%", "50.0%",
                 "-10.0 pp"):
        assert text in table.stdout, text
    as_json = json.loads(_run("claims", "check", "--format", "json", "--facts", str(tmp_path),
                              "--warehouse", warehouse).stdout)
    assert as_json["synthetic"] is False
    [claim] = as_json["claims"]
    readings = {r["definition"]: r for r in claim["readings"]}
    assert readings["convicted_or_pending"]["observed"] == pytest.approx(0.4)
    assert readings["convicted_or_pending"]["gap"] == pytest.approx(-0.1)
    assert readings["convicted"]["observed"] == pytest.approx(0.2)
    assert claim["covered"] == {"from": "2025-03-01", "to": "2025-03-10"}


def test_claims_check_with_a_broken_register_is_one_line(warehouse, tmp_path):
    (tmp_path / "claims.csv").write_text("claim_id,who\nx,y\n")
    _fails_with_one_line(
        _run("claims", "check", "--facts", str(tmp_path), "--warehouse", warehouse),
        "claims.csv, row 1: missing column(s)",
    )


def test_claims_check_as_csv_lists_every_claim_with_its_verdict(warehouse):
    from iceledger.facts import load_claims

    result = _run("claims", "check", "--format", "csv", "--warehouse", warehouse)
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # Every claim appears, checked ones once per definition, each with its verdict.
    assert {r["claim_id"] for r in rows} == {c.claim_id for c in load_claims()}
    assert all(r["verdict"] for r in rows)
