"""The dashboard in a real browser: Debian's chromium, driven by Playwright, against the real server.

A page loads, its charts draw what the API returns, a filter change re-queries and redraws, a
download matches the API, the map draws, and the Content-Security-Policy is never violated (so
the charts need no eval). Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import csv
import io
import threading
import time
import warnings
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import HANG_GUARD_SECONDS
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from test_web_support import (
    ARRESTS_BY_AOR,
    BY_GROUP,
    DAILY,
    build_warehouse,
    free_port,
    registered_test_metrics,
)

from iceledger.web.app import create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# A full page of charts can take long to paint when the two cores run other tests too.
SCREENSHOT_MS = 120_000
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Recorded before any page script runs: every CSP violation and every console error.
WATCH_PAGE = """
window.__problems = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__problems.push('CSP ' + e.violatedDirective + ' ' + e.blockedURI));
"""


class _Server:
    """uvicorn in a thread on a free loopback port; stopped when the block ends."""

    def __init__(self, app):
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                server_header=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=HANG_GUARD_SECONDS)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (CI installs Debian's chromium: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("browser") / "warehouse.duckdb")
    with registered_test_metrics(), _Server(create_app(warehouse)) as running:
        yield running


@pytest.fixture
def page(browser, request):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    context.add_init_script(WATCH_PAGE)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: errors.append(str(e)))
    yield opened
    keep_screenshot(opened, request.node.name)
    problems = opened.evaluate("window.__problems")
    context.close()
    assert problems == [], problems
    assert errors == [], errors


def keep_screenshot(page, name: str) -> None:
    """Keep a picture of the page in test-artifacts/ for whoever reads a failure. It is a
    record, not a check: a page too slow to paint in SCREENSHOT_MS is a warning, and the
    test's own assertions decide whether it passed."""
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True,
                        timeout=SCREENSHOT_MS)
    except PlaywrightTimeoutError as exc:
        warnings.warn(f"no screenshot of {name}: {exc.message.splitlines()[0]}", stacklevel=2)


def _drawn(page, name: str, query_part: str = "") -> None:
    selector = f".card[data-metric='{name}'][data-state='drawn']"
    page.wait_for_function(
        "([sel, part]) => { const c = document.querySelector(sel);"
        " return c && c.dataset.query.includes(part); }",
        arg=[selector, query_part],
        timeout=20_000,
    )


def _chart_rows(page, name: str) -> list[dict]:
    return page.evaluate(
        "(name) => window.iceledgerViews[name].view.data('rows')"
        ".map(({date, aor, criminality, arrests, share}) => ({date, aor, criminality, arrests, share}))",
        name,
    )


def _api_rows(server, name: str, params) -> list[dict]:
    rows = httpx.get(f"{server.url}/api/metrics/{name}", params=params).json()["rows"]
    keys = ("date", "aor", "criminality", "arrests", "share")
    return [{k: r.get(k) for k in keys} for r in rows]


def _strip_missing(rows):
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


def test_filter_change_redraws_the_chart_from_the_api(server, page):
    page.goto(f"{server.url}/pages/volume")
    _drawn(page, DAILY)
    assert _strip_missing(_chart_rows(page, DAILY)) == _strip_missing(_api_rows(server, DAILY, {}))
    assert page.locator(f"#metric-{DAILY} svg .mark-line path").count() >= 1
    assert "arrests-SYNTHETIC.xlsx" in page.locator(f"#metric-{DAILY} .meta").inner_text()
    assert page.locator(".banner.synthetic").is_visible()

    page.select_option("select[data-filter='aor']", "Atlanta")
    _drawn(page, DAILY, "aor=Atlanta")
    drawn = _chart_rows(page, DAILY)
    assert _strip_missing(drawn) == _strip_missing(_api_rows(server, DAILY, {"aor": "Atlanta"}))
    assert sum(r["arrests"] for r in drawn) == ARRESTS_BY_AOR["Atlanta"]

    page.locator(f"#metric-{DAILY} select.by").select_option("criminality")
    _drawn(page, DAILY, "by=criminality")
    drawn = _chart_rows(page, DAILY)
    assert {r["criminality"] for r in drawn} == {
        "Convicted Criminal",
        "Other Immigration Violator",
        "Pending Criminal Charges",
    }
    legend = page.locator(f"#metric-{DAILY} svg .role-legend").first.text_content()
    assert "Convicted Criminal" in legend


def test_download_matches_the_api(server, page):
    page.goto(f"{server.url}/pages/targeting")
    page.locator(f"#metric-{BY_GROUP} select.by").select_option("aor")
    _drawn(page, BY_GROUP, "by=aor")
    with page.expect_download() as download_info:
        page.locator(f"#metric-{BY_GROUP} a.csv").click()
    downloaded = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    api = httpx.get(f"{server.url}/api/metrics/{BY_GROUP}", params={"by": "aor"}).json()["rows"]
    assert [(r["aor"], int(r["arrests"])) for r in downloaded] == [(r["aor"], r["arrests"]) for r in api]
    assert {r["aor"]: r["arrests"] for r in api} == ARRESTS_BY_AOR
    bars = page.locator(f"#metric-{BY_GROUP} svg .mark-rect path")
    assert bars.count() == len(ARRESTS_BY_AOR)


def test_map_draws_states_facilities_and_offices(server, page):
    page.goto(f"{server.url}/map")
    page.wait_for_function(
        "() => document.getElementById('map-card').dataset.state === 'drawn'", timeout=20_000
    )
    facilities = page.evaluate("() => window.iceledgerViews.map.view.data('facilities').length")
    api = httpx.get(f"{server.url}/api/map").json()
    assert facilities == len(api["facilities"])
    offices = page.evaluate(
        "() => window.iceledgerViews.map.view.data('field_offices').map(o => o.aor_code)"
    )
    assert sorted(offices) == ["ATL", "HOU", "MIA"]
    # 56 state and territory outlines from the vendored topojson.
    # Every state and territory outline of the vendored topojson is drawn (56 features).
    page.wait_for_function(
        "() => document.querySelectorAll('#map-chart svg .layer_0_marks path').length === 56",
        timeout=20_000,
    )
    assert "SYNTHETIC ISLAND FACILITY" in page.locator("#map-meta").inner_text()
