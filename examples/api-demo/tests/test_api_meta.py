"""Contract tests for the 'meta' operations of Inventory API 1.0.0.

Written by `aqe generate api` from openapi.yaml; regenerate with:

    aqe generate api openapi.yaml --app app:app --out tests

Every call is checked by the `check` fixture (conftest.py): a documented status, a
body valid against its schema, the declared content type and headers, never a 5xx.
"""

import pytest


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/health", {}, id="plain call"),
    ],
)
def test_health_accepts(api, check, url, options):
    """GET /health: valid requests get a 2xx (or a documented 404, 409...), never a 400/422."""
    response = api.request("GET", url, **options)
    check(response, "GET /health")


@pytest.mark.parametrize(
    ("url", "options"),
    [
        pytest.param("/stats", {}, id="plain call"),
    ],
)
def test_stats_accepts(api, check, url, options):
    """GET /stats: valid requests get a 2xx (or a documented 404, 409...), never a 400/422."""
    response = api.request("GET", url, **options)
    check(response, "GET /stats")
