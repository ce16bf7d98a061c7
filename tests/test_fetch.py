"""`fetch stats` finds the workbook on the page and saves it safely; all against 127.0.0.1 only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import xlsxwriter
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.errors import IceledgerError
from iceledger.sources.stats.fetch import fetch_stats, find_workbook_links

PAGE = """<html><body>
<h1>Detention Management</h1>
<a href="/doclib/detention/FY26_detentionStats02022026.xlsx">FY 2026 Detention Statistics</a>
<a href="/doclib/other/budget.xlsx">Budget tables</a>
<a href="https://example.org/report.pdf">A report</a>
<a href="files/annual.xlsx"><span>Annual Detention</span> <b>Statistics</b></a>
</body></html>"""


def _xlsx_bytes(tmp_path: Path, label: str) -> bytes:
    path = tmp_path / f"{label}.xlsx"
    book = xlsxwriter.Workbook(str(path))
    book.set_properties({"created": datetime(2026, 2, 2)})  # same label, same bytes
    book.add_worksheet("Detention FY26").write("A1", f"synthetic test workbook {label}")
    book.close()
    return path.read_bytes()


class _Site:
    """A tiny web site: path -> (status, headers, body, seconds to wait before answering)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes, float]] = {}
        self.requests: list[str] = []
        self.test_ended = threading.Event()

    def serve(self, path: str, body: bytes | str, status: int = 200,
              headers: dict[str, str] | None = None, stall: bool = False) -> None:
        """`stall`: answer only once the test has ended, so any client timeout fires first."""
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, headers or {}, data, stall)


@pytest.fixture
def site() -> Iterator[tuple[_Site, str]]:
    state = _Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            state.requests.append(self.path)
            status, headers, body, stall = state.routes.get(
                self.path, (404, {}, b"not found", False))
            if stall:
                state.test_ended.wait()
            self.send_response(status)
            headers = {"Content-Length": str(len(body)), **headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        state.test_ended.set()
        server.shutdown()
        server.server_close()


def test_links_are_found_by_name_or_text_and_made_absolute():
    links = find_workbook_links(PAGE, "https://www.ice.gov/detain/detention-management")
    assert links == [
        "https://www.ice.gov/doclib/detention/FY26_detentionStats02022026.xlsx",
        "https://www.ice.gov/detain/files/annual.xlsx",
    ]


def test_downloads_the_linked_workbook_under_the_servers_name(site, tmp_path):
    state, base = site
    workbook = _xlsx_bytes(tmp_path, "a")
    state.serve("/detain/detention-management", PAGE)
    state.serve("/doclib/detention/FY26_detentionStats02022026.xlsx", workbook)
    state.serve("/detain/files/annual.xlsx", workbook)
    out = tmp_path / "out"

    outcome = fetch_stats(out, f"{base}/detain/detention-management")

    fetched = outcome.files
    assert outcome.errors == []
    assert fetched[0].path == out / "FY26_detentionStats02022026.xlsx"
    assert fetched[0].path.read_bytes() == workbook
    assert fetched[0].already_had is False
    # The second link carries the same bytes: it is recognised, not saved twice.
    assert fetched[1].already_had is True and fetched[1].path == fetched[0].path
    assert sorted(p.name for p in out.iterdir()) == ["FY26_detentionStats02022026.xlsx"]
    assert "/doclib/other/budget.xlsx" not in state.requests


def test_same_bytes_are_skipped_and_a_reposted_version_is_kept_beside(site, tmp_path):
    state, base = site
    url = f"{base}/doclib/detention/FY26_detentionStats02022026.xlsx"
    state.serve("/doclib/detention/FY26_detentionStats02022026.xlsx", _xlsx_bytes(tmp_path, "a"))
    out = tmp_path / "out"
    first = fetch_stats(out, url).files[0]
    again = fetch_stats(out, url).files[0]
    assert again.already_had and again.path == first.path

    # ICE re-posts a workbook under the same name with new figures: both versions survive.
    state.serve("/doclib/detention/FY26_detentionStats02022026.xlsx", _xlsx_bytes(tmp_path, "b"))
    reposted = fetch_stats(out, url).files[0]
    assert not reposted.already_had
    assert reposted.path.name == f"FY26_detentionStats02022026-{reposted.sha256[:12]}.xlsx"
    assert first.path.read_bytes() == _xlsx_bytes(tmp_path, "a")
    assert len(list(out.iterdir())) == 2


def test_content_disposition_names_the_file_but_cannot_escape_the_folder(site, tmp_path):
    state, base = site
    state.serve("/download?id=7", _xlsx_bytes(tmp_path, "a"),
                headers={"Content-Disposition": 'attachment; filename="../../FY25_stats.xlsx"'})
    state.serve("/page", '<a href="/download?id=7">Detention Statistics (xlsx)</a>'
                         '<a href="/x/FY25_detentionStats.xlsx">x</a>')
    state.serve("/x/FY25_detentionStats.xlsx", status=302, body=b"",
                headers={"Location": "/download?id=7"})
    fetched = fetch_stats(tmp_path / "out", f"{base}/page").files
    assert [f.path for f in fetched] == [tmp_path / "out" / "FY25_stats.xlsx"]


@pytest.mark.parametrize(
    ("route", "body", "status", "message"),
    [
        ("/page", "<p>nothing here</p>", 200, "no detention-statistics .xlsx link"),
        ("/other", "", 200, "HTTP 404 Not Found"),
        ("/page", "oops", 500, "HTTP 500"),
    ],
)
def test_page_problems_are_one_clear_line(site, tmp_path, route, body, status, message):
    state, base = site
    state.serve(route, body, status=status)
    with pytest.raises(IceledgerError, match=message) as caught:
        fetch_stats(tmp_path / "out", f"{base}/page")
    assert f"{base}/page" in str(caught.value) and "\n" not in str(caught.value)


def _only_error(outcome) -> str:
    assert outcome.files == [] and len(outcome.errors) == 1
    message = str(outcome.errors[0])
    assert "\n" not in message
    return message


def test_timeout_is_reported_and_leaves_nothing(site, tmp_path):
    state, base = site
    state.serve("/slow/FY26_detentionStats.xlsx", _xlsx_bytes(tmp_path, "a"), stall=True)
    outcome = fetch_stats(tmp_path / "out", f"{base}/slow/FY26_detentionStats.xlsx", timeout=0.2)
    assert "timed out" in _only_error(outcome)
    assert list((tmp_path / "out").iterdir()) == []


def test_not_a_workbook_or_cut_short_leaves_no_file(site, tmp_path):
    state, base = site
    state.serve("/a/FY26_detentionStats.xlsx", "<html>Access denied</html>",
                headers={"Content-Type": "text/html"})
    outcome = fetch_stats(tmp_path / "out", f"{base}/a/FY26_detentionStats.xlsx")
    assert "did not send an .xlsx workbook" in _only_error(outcome)

    whole = _xlsx_bytes(tmp_path, "a")
    state.serve("/b/FY26_detentionStats.xlsx", whole[:100],
                headers={"Content-Length": str(len(whole))})
    outcome = fetch_stats(tmp_path / "out", f"{base}/b/FY26_detentionStats.xlsx")
    assert f"{base}/b/FY26_detentionStats.xlsx" in _only_error(outcome)
    assert list((tmp_path / "out").iterdir()) == []


def test_one_failed_workbook_does_not_stop_the_others(site, tmp_path):
    state, base = site
    state.serve("/detain/detention-management", PAGE)
    state.serve("/detain/files/annual.xlsx", _xlsx_bytes(tmp_path, "a"))
    outcome = fetch_stats(tmp_path / "out", f"{base}/detain/detention-management")
    assert [f.path.name for f in outcome.files] == ["annual.xlsx"]
    assert len(outcome.errors) == 1 and "HTTP 404" in str(outcome.errors[0])


def test_connection_refused_is_one_line(tmp_path):
    outcome = fetch_stats(tmp_path / "out", "http://127.0.0.1:9/FY26_detentionStats.xlsx",
                          timeout=2)
    assert "cannot download" in _only_error(outcome)


def test_cli_fetch_stats_saves_and_reports(site, tmp_path):
    state, base = site
    state.serve("/detain/detention-management", PAGE)
    state.serve("/doclib/detention/FY26_detentionStats02022026.xlsx", _xlsx_bytes(tmp_path, "a"))
    state.serve("/detain/files/annual.xlsx", _xlsx_bytes(tmp_path, "b"))
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["fetch", "stats", "--out", str(out), "--url", f"{base}/detain/detention-management"]

    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "saved" in first.output and "FY26_detentionStats02022026.xlsx" in first.output

    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "already have" in second.output

    state.serve("/detain/detention-management", "<p>moved</p>")
    failed = runner.invoke(app, args)
    assert failed.exit_code == 1
    assert "no detention-statistics .xlsx link" in failed.output
    assert "Traceback" not in failed.output
