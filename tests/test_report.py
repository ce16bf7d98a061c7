"""The report: every section, valid charts, the numbers of the metrics, offline, labelled synthetic."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import zlib
from html import escape as html_escape

import pytest
import vl_convert

from iceledger.metrics.registry import (
    FISCAL_YEAR,
    QUESTIONS,
    REGISTRY,
    SHIFT_SUFFIX,
    by_fiscal_year,
)
from iceledger.report.build import NO_DATA, NOT_MEASURABLE, WITHHELD, build_report
from iceledger.report.vega_process import VegaProcess, chart_png
from iceledger.report.provenance import (
    LISTED_CHECKS,
    LISTED_QUARANTINE_REASONS,
    read_provenance,
)
from iceledger.serving import charts
from iceledger.serving.formatting import cell_text
from iceledger.serving.service import WarehouseService
from iceledger.tables import QUARANTINE
from iceledger.warehouse import Warehouse


@pytest.fixture(scope="module")
def report(synthetic_warehouse, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    return build_report(synthetic_warehouse, out, pdf=True)


@pytest.fixture(scope="module")
def html(report) -> str:
    return report.html_path.read_text(encoding="utf-8")


def _specs(html: str) -> dict:
    found = re.search(r"const ICELEDGER_SPECS = (\{.*?\});\n", html, re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


def test_every_question_and_every_metric_has_a_place(report, html):
    assert [s.id for s in report.sections] == list(QUESTIONS)
    for question in QUESTIONS:
        assert f'<section id="{question}">' in html
    shown = {v.metric.name for s in report.sections for v in s.views}
    assert shown == set(REGISTRY)
    assert 'id="provenance"' in html


def test_every_chart_spec_compiles_with_vega_lite(html):
    specs = _specs(html)
    assert len(specs) >= 10
    for view_id, spec in specs.items():
        compiled = vl_convert.vegalite_to_vega({**spec, "width": 600})
        assert compiled.get("marks") or compiled.get("signals"), view_id


def test_chart_data_and_csv_are_the_metric_output(report, synthetic_warehouse):
    service = WarehouseService(synthetic_warehouse, public=True, k=10, max_rows=200_000)
    checked = 0
    for section in report.sections:
        for view in section.views:
            if not view.rows:
                continue
            expected = service.compute(view.shown).table
            csv_bytes = base64.b64decode(view.csv_href.split(",", 1)[1])
            rows = list(csv.DictReader(io.StringIO(csv_bytes.decode())))
            assert len(rows) == expected.num_rows == view.rows
            first = expected.slice(0, 1).to_pylist()[0]
            for column, value in first.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    assert int(rows[0][column]) == value, (view.id, column)
            if view.spec and "data" in view.spec and "values" in view.spec["data"]:
                # The metric's rows, and for a monthly line an empty row per month missing
                # inside a series (charts.with_missing_months): a break, never a figure.
                values = view.spec["data"]["values"]
                measures = charts.value_columns(expected, ())
                gaps = [r for r in values if "month" in r
                        and all(r.get(c) is None for c in measures) and len(values) > len(rows)]
                assert len(values) - len(gaps) <= expected.num_rows <= len(values)
            checked += 1
    assert checked >= 10


def test_a_view_mostly_hidden_is_shown_by_fiscal_year(report, synthetic_warehouse):
    # Rare events: most months (or the parts of the month a split date cuts) count fewer than 10
    # people, so the view counts fiscal years.
    service = WarehouseService(synthetic_warehouse, public=True, k=10, max_rows=200_000)
    yearly = 0
    for view in (v for s in report.sections for v in s.views
                 if v.shown and not v.metric.disclosure.instead):
        own = service.compute(service.request(view.metric.name)).table
        labels = own.column("suppressed") if "suppressed" in own.column_names else None
        mostly = labels is not None and (labels.null_count * 2 < own.num_rows)
        split = view.metric.name.endswith(SHIFT_SUFFIX)
        monthly = REGISTRY.get(view.metric.name.removesuffix(SHIFT_SUFFIX))
        sibling = by_fiscal_year(monthly) if monthly else None
        if (sibling is None or ("split_date" if split else "month") not in own.column_names
                or not mostly):
            assert view.shown.name == view.metric.name and not view.grain_note, view.id
            continue
        assert (view.shown.name, view.shown.by) == (sibling.name, (FISCAL_YEAR,)), view.id
        assert view.id == view.metric.name.replace("_", "-")
        assert ", by fiscal year" in view.title
        assert ("before and after each split date" if split else "most months") in view.grain_note
        assert view.spec["title"]["text"][0].startswith("By fiscal year")
        yearly += 1
    assert yearly


def test_offline_self_contained_and_labelled_synthetic(html, report):
    assert "SYNTHETIC DATA" in html and 'id="synthetic-banner"' in html
    assert "window.vegaEmbed" in html
    # No external script, stylesheet or image: the file works with no network.
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="https?://', html)
    for source in report.provenance.sources:
        assert source["sha256"][:16] in html
    assert report.pdf_path.read_bytes().startswith(b"%PDF")


def test_claims_are_held_against_the_record(report, html):
    assert report.claims
    assert 'id="claims-table"' in html
    checked = [c for c in report.claims if c.status == "checked"]
    assert checked and all(c.readings for c in checked)
    definitions = {r.definition for c in checked for r in c.readings}
    assert {"convicted", "convicted_or_pending"} <= definitions
    # The report is public: on the SYNTHETIC record every checked claim's period gives a small
    # count back (docs/dashboard.md), so it says why in place of the observed readings.
    withheld = [c for c in checked if c.withheld]
    assert withheld and all(r.observed is None for c in withheld for r in c.readings)
    assert all(html_escape(c.withheld) in html for c in withheld)
    # Every row names its metric and its claim's period, checked or not (two claims worded
    # alike, one tested on arrests and one on book-ins, are told apart), and gaps run one way.
    start = html.index('id="claims-table"')
    table = html[start:html.index("</table>", start)]
    assert "<th>observed − claimed</th>" in table
    for check in report.claims:
        assert html_escape(check.tested_over) in table
        assert f"tested with {check.claim.metric}" in table or not check.claim.metric
    assert "<td rowspan=\"1\"> to </td>" not in table


def _pdf_text(path) -> str:
    """The text drawn on the PDF's pages (fpdf2 deflates each page's content stream)."""
    # fpdf2 writes "stream\n", the data, "\nendstream": a data byte just before it may be a
    # carriage return, which is the data's own.
    pages = re.findall(rb"stream\r?\n(.*?)\nendstream", path.read_bytes(), re.S)
    texts = []
    for page in pages:
        try:
            texts.append(zlib.decompress(page).decode("latin-1"))
        except zlib.error:  # images and fonts
            continue
    return "\n".join(texts)


def test_pdf_prints_small_results_as_tables_and_says_which_views_have_no_data(report):
    text = _pdf_text(report.pdf_path)
    # The strings drawn, in order: a cell's text wrapped over two lines is two strings.
    drawn = " ".join(re.findall(r"\((.*?)\) Tj", text))
    views = [v for s in report.sections for v in s.views]
    tables = [v for v in views if v.table_rows]
    assert tables
    for view in tables:
        # A table: each column name is a heading cell and each value a cell of its own.
        for column, value in view.table_rows[0].items():
            assert all(word in drawn for word in column.split("_")), (view.id, column)
            if isinstance(value, int | float):  # numbers are short enough never to wrap
                assert cell_text(value, column) in drawn, (view.id, column)
    said = sum(text.count(f"{kind}:") for kind in (NOT_MEASURABLE, WITHHELD, NO_DATA))
    assert said == sum(not v.spec and not v.table_rows for v in views)
    # The title page carries the first section rather than standing nearly blank.
    first_page = text.split("iceledger report - page 1")[0]
    assert "Volume against targets" in first_page


def test_provenance_lists_a_sample_but_counts_every_failed_check_and_quarantine_reason(tmp_path):
    reasons, failures = LISTED_QUARANTINE_REASONS + 7, LISTED_CHECKS + 3
    with Warehouse(tmp_path / "w.duckdb").connect() as con:
        con.execute(f"INSERT INTO {QUARANTINE} SELECT 'x', 'f.csv', NULL, i, NULL, "
                    f"'reason ' || (i % {reasons}) FROM range({2 * reasons}) t(i)")
        con.execute(f"CREATE TABLE foia_checks AS SELECT 'check ' || i AS check, "
                    f"CASE WHEN i < {failures} THEN 'fail' ELSE 'pass' END AS status "
                    f"FROM range({failures + 10}) t(i)")
        provenance = read_provenance(con)
    assert len(provenance.quarantine_reasons) == LISTED_QUARANTINE_REASONS
    assert provenance.quarantine_reason_count == reasons
    assert len(provenance.failed_checks["foia_checks"]) == LISTED_CHECKS
    assert provenance.failed_check_count == {"foia_checks": failures}


SQUARES = {"$schema": "https://vega.github.io/schema/vega-lite/v6.json", "width": "container",
           "data": {"values": [{"day": d, "people": d * d} for d in range(30)]},
           "mark": "line", "encoding": {"x": {"field": "day", "type": "quantitative"},
                                        "y": {"field": "people", "type": "quantitative"}}}


def test_what_the_worker_process_makes_is_what_is_made_here():
    with VegaProcess() as vega:
        assert vega._worker is not None
        vega.draw("squares", SQUARES)
        drawn = vega.png("squares", SQUARES)
        bundle = vega.vega_bundle()
    assert vega._worker.returncode == 0
    assert drawn.startswith(b"\x89PNG")
    assert drawn == chart_png(SQUARES)
    assert bundle == vl_convert.javascript_bundle()


def test_what_a_dead_worker_process_did_not_make_is_made_here():
    with VegaProcess() as vega:
        vega._worker.kill()
        vega._worker.wait()
        vega.draw("squares", SQUARES)
        assert vega.png("squares", SQUARES) == chart_png(SQUARES)
        assert "vega" in vega.vega_bundle()


def test_a_chart_the_worker_process_cannot_draw_raises_here_as_without_it():
    broken = {**SQUARES, "mark": "no-such-mark"}
    with VegaProcess() as vega:
        vega.draw("broken", broken)
        with pytest.raises(ValueError):
            vega.png("broken", broken)
        # The worker survives a job that raised.
        vega.draw("squares", SQUARES)
        assert vega.png("squares", SQUARES) == chart_png(SQUARES)


def test_claim_readings_read_as_their_definition_in_report_cli_and_dashboard():
    from iceledger.metrics.claims import Reading
    from iceledger.serving.formatting import claim_gap, claim_value_text
    from iceledger.serving.output import claim_gap_text

    share = Reading("convicted_or_pending", 0.6, 0.55, 0.65, 0.7)
    # A share is a percent, its gap signed percentage points, as in the CLI's claims table.
    assert claim_value_text(share.claimed, share.definition) == "70.0%"
    assert claim_value_text(share.observed, share.definition) == "60.0%"
    assert claim_gap(share) == claim_gap_text(share.definition, share.gap) == "-10.0 pp"
    rate = Reading("deaths_per_100k_bed_days", 0.13, None, None, 0.07)
    assert claim_value_text(rate.claimed, rate.definition) == "0.07"
    assert claim_gap(rate) == "+0.060"
