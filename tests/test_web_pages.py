"""Dashboard pages beyond the metric cards: the claims register on a real synthetic warehouse."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from iceledger.facts import load_claims
from iceledger.web.app import create_app


@pytest.fixture(scope="module")
def client(synthetic_warehouse):
    return TestClient(create_app(synthetic_warehouse, public=True))


def test_claims_page_lists_every_claim_with_who_when_source_readings_and_verdict(client):
    page = client.get("/pages/claims")
    assert page.status_code == 200
    html = page.text
    assert "No metric on this page is registered" not in html
    claims = load_claims()
    assert claims
    for claim in claims:
        assert f'id="claim-{claim.claim_id}"' in html
        assert claim.who in html and str(claim.date) in html
        if claim.metric:
            assert f'href="/api/metrics/{claim.metric}"' in html
    assert html.count("Verdict:") == len(claims)
    # Every definition is read for a checked claim, shares with their intervals.
    assert "convicted or pending charges" in html and "no conviction and no pending charge" in html
    assert "% (" in html
