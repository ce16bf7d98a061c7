"""The pages a reader publishes from, in Debian's chromium: on a synthetic FOIA warehouse (the
demo's pipeline) and on the real workbooks alone. Every drawn chart's axis carries its measure's
unit; no page is empty; the home page opens with dated, cited facts; facility and field-office
pages draw a time series; nothing scrolls sideways at 390 px; a shared URL restores the filters
and each card's breakdown.
Screenshots go to test-artifacts/ (gitignored)."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote_plus

import pytest
from test_browser_dashboard import WATCH_PAGE, _Server, keep_screenshot
from test_browser_dashboard import browser  # noqa: F401  (the shared chromium fixture)

from iceledger.metrics.registry import QUESTIONS
from iceledger.web.app import create_app
from iceledger.web.pages import PUBLISHED_PAGE

pytestmark = pytest.mark.browser
PHONE = 390
# Every card settles as drawn, error (said on the card) or not available (said on the card).
SETTLED = """() => [...document.querySelectorAll('.card[data-metric]')].every(
  (c) => c.dataset.available !== 'yes' || ['drawn', 'error'].includes(c.dataset.state))"""
# For each drawn card: the unit its chart declares and the axis and legend titles it shows.
TITLES = """() => Object.entries(window.iceledgerViews).filter(([name]) => name !== 'map')
  .map(([name, result]) => ({
    name,
    unit: (result.spec.usermeta || {}).unit,
    titles: [...document.querySelectorAll(`.card[data-metric='${name}'] .role-axis-title text,`
                                          + ` .card[data-metric='${name}'] .role-legend-title text`)]
            .map((t) => t.textContent),
  }))"""


@pytest.fixture(scope="module")
def workbooks_warehouse(stats_workbooks, tmp_path_factory):
    from iceledger.sources.stats.ingest import ingest_stats
    from iceledger.warehouse import Warehouse

    path = tmp_path_factory.mktemp("workbooks-browser") / "w.duckdb"
    assert not ingest_stats(stats_workbooks, Warehouse(path)).failed
    return path


@pytest.fixture(scope="module", params=["synthetic", "workbooks"])
def server(request):
    warehouse = request.getfixturevalue(
        "synthetic_warehouse" if request.param == "synthetic" else "workbooks_warehouse")
    with _Server(create_app(warehouse, public=True)) as running:
        running.kind = request.param
        yield running


def _open(browser, url: str, width: int = 1400):
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.add_init_script(WATCH_PAGE)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function(SETTLED, timeout=120_000)
    page.errors = errors
    return page


def _close(page, name: str) -> None:
    keep_screenshot(page, name)
    problems = page.evaluate("window.__problems")
    errors = page.errors
    page.context.close()
    assert problems == [] and errors == [], (problems, errors)


def test_every_chart_axis_is_titled_with_its_unit_and_no_page_is_empty(browser, server):
    checked = 0
    for page_name in [*QUESTIONS, PUBLISHED_PAGE]:
        page = _open(browser, f"{server.url}/pages/{page_name}")
        text = page.inner_text("main")
        assert "is registered yet" not in text and "No metric on this page" not in text
        for card in page.evaluate(TITLES):
            if card["unit"]:
                assert card["unit"] in card["titles"], (page_name, card)
                checked += 1
        _close(page, f"pages-{server.kind}-{page_name}")
    assert checked >= (20 if server.kind == "synthetic" else 5)


def test_home_opens_with_dated_cited_facts_and_fits_a_phone(browser, server):
    for width in (1400, PHONE):
        page = _open(browser, server.url, width)
        facts = page.locator("li.fact").all_inner_texts()
        assert len(facts) >= 6, facts
        for fact in facts:
            assert re.search(r"as of \d{4}-\d{2}-\d{2}", fact), fact
            # Loaded files give their retrieval date; a sourced facts file names its source.
            assert "retrieved" in fact or "targets.csv (" in fact, fact
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        _close(page, f"home-{server.kind}-{width}")


def test_pages_fit_a_phone_without_sideways_scrolling(browser, server):
    for path in ("/pages/volume", "/pages/detention", "/pages/claims", "/map"):
        page = _open(browser, f"{server.url}{path}", PHONE)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE, path
        _close(page, f"phone-{server.kind}-{path.strip('/').replace('/', '-')}")


@pytest.fixture(scope="module")
def full_server(synthetic_warehouse):
    """Not public: public mode takes few filters by design (tests/test_public_audit.py); what
    is tested here is that the address carries whichever a page offers."""
    with _Server(create_app(synthetic_warehouse)) as running:
        running.kind = "full"
        yield running


def test_a_shared_url_restores_the_filters(browser, full_server):
    server = full_server
    page = _open(browser, f"{server.url}/pages/detention")
    options = page.eval_on_selector_all("select[name='aor'] option", "os => os.map(o => o.value)")
    page.context.close()
    chosen = next(v for v in options if v)
    page = _open(browser, f"{server.url}/pages/detention?aor={quote(chosen)}")
    assert page.eval_on_selector("select[name='aor']", "s => s.value") == chosen
    queries = page.eval_on_selector_all(
        ".card[data-state='drawn']", "cs => cs.map(c => c.dataset.query)")
    assert any(f"aor={quote(chosen, safe='')}" in q or f"aor={chosen}" in q for q in queries)
    # Changing a filter writes it back into the address, ready to copy.
    page.select_option("select[name='aor']", "")
    assert "aor=" not in page.evaluate("window.location.search")
    _close(page, f"shared-url-{server.kind}")


def test_a_shared_url_restores_each_cards_breakdown_and_column(browser, full_server):
    server = full_server
    page = _open(browser, f"{server.url}/pages/volume")
    name, by = page.evaluate("""() => {
      const card = [...document.querySelectorAll(".card[data-state='drawn']")]
        .find((c) => c.querySelector("select.by").options.length > 1);
      return [card.dataset.metric, card.querySelector("select.by").options[1].value];
    }""")
    card = f".card[data-metric='{name}']"
    page.select_option(f"{card} select.by", by)
    # The choice goes into the address at once, and the card is redrawn broken down.
    assert f"{name}.by={by}" in page.evaluate("window.location.search")
    page.wait_for_function(f"""() => {{
      const card = document.querySelector("{card}");
      return card.dataset.state === 'drawn' && card.dataset.query.includes('by={by}');
    }}""")
    column = page.eval_on_selector(f"{card} select.value", "s => s.options[1].value")
    page.select_option(f"{card} select.value", column)
    page.wait_for_function(f"""() => document.querySelector("{card}").dataset.state === 'drawn'
      && document.querySelector("{card}").dataset.query.includes('value={column}')""")
    shared = page.evaluate("window.location.href")
    assert f"{name}.value={column}" in shared
    page.context.close()
    # Opened from the shared address, the card is drawn as it was chosen.
    page = _open(browser, shared)
    assert page.eval_on_selector(f"{card} select.by", "s => s.value") == by
    assert page.eval_on_selector(f"{card} select.value", "s => s.value") == column
    query = page.eval_on_selector(card, "c => c.dataset.query")
    assert f"by={by}" in query and f"value={column}" in query
    # Back to no breakdown: the address forgets it.
    page.select_option(f"{card} select.by", "")
    assert f"{name}.by=" not in page.evaluate("window.location.search")
    _close(page, f"shared-card-{server.kind}")


RANKING_LINKS = """(name) => [...document.querySelectorAll(
  `.card[data-metric='${name}'] .ranking a`)].map((a) => a.getAttribute('href'))"""


def test_the_field_office_ranking_links_each_office_to_its_page(browser, full_server):
    page = _open(browser, f"{full_server.url}/pages/volume")
    links = page.evaluate(RANKING_LINKS, "field_office_ranking")
    assert len(links) >= 5 and all(link.startswith("/field-offices/") for link in links)
    # The FOIA records name the office; its page is at its code, and without workbooks it still
    # leads to the office's figures, page by page, filtered to it.
    # The ranking is folded under the chart; opened, each office is a link.
    page.click(".card[data-metric='field_office_ranking'] .ranking summary")
    page.click(f".card[data-metric='field_office_ranking'] .ranking a[href='{links[0]}']")
    page.wait_for_load_state()
    assert re.search(r"/field-offices/[A-Z]{3}$", page.url), page.url
    filtered = page.get_attribute("nav.office-pages a[href^='/pages/volume']", "href")
    page.context.close()
    page = _open(browser, f"{full_server.url}{filtered}")
    office = filtered.split("aor=")[1]
    assert page.eval_on_selector("select[name='aor']", "s => s.value") == unquote_plus(office)
    _close(page, "office-from-ranking")


def test_facility_and_office_rankings_link_to_their_pages(browser, workbooks_warehouse):
    with _Server(create_app(workbooks_warehouse, public=True)) as running:
        page = _open(browser, f"{running.url}/pages/detention")
        facilities = page.evaluate(RANKING_LINKS, "facility_population")
        offices = page.evaluate(RANKING_LINKS, "field_office_population")
        assert len(facilities) >= 50 and all(f.startswith("/facilities/") for f in facilities)
        assert len(offices) >= 20 and all(o.startswith("/field-offices/") for o in offices)
        page.click(".card[data-metric='facility_population'] .ranking summary")
        page.click(f".card[data-metric='facility_population'] .ranking a[href='{facilities[0]}']")
        page.wait_for_selector("#chart-history[data-state='drawn']")
        assert page.url.endswith(facilities[0])
        _close(page, "facility-from-ranking")


def test_facility_and_field_office_pages_draw_a_time_series(browser, workbooks_warehouse):
    with _Server(create_app(workbooks_warehouse, public=True)) as running:
        for width in (1400, PHONE):
            page = _open(browser, f"{running.url}/field-offices/ATL", width)
            page.wait_for_selector("#chart-history[data-state='drawn']")
            points = page.evaluate("window.iceledgerViews['chart-history'].view.data('rows').length")
            assert points >= 10
            facility = page.locator("#facilities a").first.get_attribute("href")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            _close(page, f"field-office-{width}")
            page = _open(browser, f"{running.url}{facility}", width)
            page.wait_for_selector("#chart-history[data-state='drawn'] svg .mark-line path")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            _close(page, f"facility-{width}")


def test_the_map_steps_through_releases_and_keeps_the_choice_in_the_url(browser,
                                                                        workbooks_warehouse):
    import httpx

    with _Server(create_app(workbooks_warehouse, public=True)) as running:
        releases = httpx.get(f"{running.url}/api/map").json()["releases"]
        assert len(releases) >= 10
        chosen = releases[3]
        expected = httpx.get(f"{running.url}/api/map", params={"release": chosen["date"]}).json()
        page = _open(browser, f"{running.url}/map")
        page.wait_for_selector("#map-card[data-state='drawn']")
        assert page.eval_on_selector("#release", "s => s.max") == str(len(releases) - 1)
        page.eval_on_selector("#release", "s => { s.value = '3'; s.dispatchEvent(new Event('change')); }")
        page.wait_for_function(f"() => window.location.search === '?release={chosen['date']}'"
                               " && document.getElementById('map-card').dataset.state === 'drawn'")
        drawn = page.evaluate("window.iceledgerViews.map.view.data('facilities').length")
        assert drawn == len(expected["facilities"])
        assert chosen["workbook"] in page.inner_text("#release-label")
        _close(page, "map-release")
        # The shared URL opens on the same release.
        page = _open(browser, f"{running.url}/map?release={chosen['date']}")
        page.wait_for_selector("#map-card[data-state='drawn']")
        assert page.eval_on_selector("#release", "s => s.value") == "3"
        _close(page, "map-release-shared")
