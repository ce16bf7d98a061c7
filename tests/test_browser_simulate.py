"""The strategy page in a real browser (Debian's chromium, Playwright), over the SYNTHETIC
warehouse: it draws the API's expected path and steady state, redraws when a control changes,
and violates no Content-Security-Policy (the page fixture checks)."""

from __future__ import annotations

import httpx
import pytest
from test_browser_dashboard import _Server, browser, page  # noqa: F401 - fixtures

from iceledger.web.app import create_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(synthetic_warehouse):
    with _Server(create_app(synthetic_warehouse)) as running:
        yield running


def _drawn(page, text: str) -> None:  # noqa: F811 - page is the fixture's value
    page.wait_for_function(
        "(text) => { const c = document.getElementById('simulate-card');"
        " return c.dataset.state === 'drawn'"
        " && document.getElementById('simulate-description').textContent.includes(text); }",
        arg=text, timeout=60_000)


def test_strategy_page_draws_the_api_answer_and_redraws(server, page):  # noqa: F811
    page.goto(f"{server.url}/pages/simulate")
    _drawn(page, "ICE arrests a day")
    answer = httpx.get(f"{server.url}/api/simulate", params={"strategy": "volume"}).json()
    drawn = page.evaluate("() => window.iceledgerViews.simulate.view.data('source_0')"
                          ".map((r) => r.population)")
    assert drawn == pytest.approx([r["population"] for r in answer["path"]])
    assert "SYNTHETIC DATA" in page.locator("#simulate-description").inner_text()
    measures = page.locator("#simulate-table tbody tr td:first-child").all_inner_texts()
    assert "population" in measures and "cost_per_removal_usd" in measures
    page.select_option("select[name='strategy']", "targeted")
    _drawn(page, "people with convictions")
    assert page.locator("#simulate-assumptions li").count() > 3
