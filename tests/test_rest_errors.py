"""Every REST error under /api/ is JSON `{error, code, ...}`: bad filters, auth, 404, 405, 429, 500."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.throttling import BaseThrottle

from trading import api as trading_api

pytestmark = pytest.mark.django_db

HISTORY = "/api/trading/orders/history"


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and body["code"]
    if code is not None:
        assert body["code"] == code, body
    assert "Traceback" not in response.content.decode()
    return body


@pytest.fixture
def api(client, trader, portfolio):
    client.force_login(trader)
    return client


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-02-30",  # well-formed, impossible
        "to=2026-13-01",
        "from=2026-02-28T25:00",
        "from=2026-01-01T10:00:00%2B25:00",  # an offset no zone has
        "from=0001-01-01",  # Berlin midnight of day one is before the first UTC moment
        "to=9999-12-31T23:59:59-12:00",  # after the last one
        "from=yesterday",
        "symbol=SAP%00",
        "symbol=%C3%9F",
        "symbol=" + "A" * 17,
        "status=lost",
        "side=hold",
    ],
)
def test_impossible_or_malformed_filters_are_a_400_naming_the_field(api, query):
    body = assert_error_shape(api.get(f"{HISTORY}?{query}"), 400, "invalid_filter")
    assert body["field"] == query.split("=")[0]


@pytest.mark.parametrize("query", ["from=2026-02-28", "to=2026-02-28T23:59:59%2B01:00", "symbol=sap", "symbol=BRK.B"])
def test_real_dates_and_symbols_are_accepted(api, query):
    assert api.get(f"{HISTORY}?{query}").status_code == 200


FILTER_NAMES = ["from", "to", "symbol", "status", "side", "page", "page_size"]


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(FILTER_NAMES), st.text(max_size=40), max_size=4))
def test_any_filter_values_get_results_or_a_json_refusal(api, params, settings):
    settings.DEBUG = True  # the debug error pages must not be what answers either
    response = api.get(HISTORY, params)

    if response.status_code == 200:
        assert "results" in response.json()
    else:
        assert_error_shape(response, response.status_code)
        assert response.status_code in {400, 404}


@pytest.mark.parametrize(
    "path",
    [
        "/api/trading/orders/abc",
        "/api/trading/orders/12abc",
        "/api/trading/orders/-1",
        "/api/trading/orders/",
        "/api/trading/nothing",
        "/api/nothing/at/all",
        "/api/",
    ],
)
def test_paths_under_api_that_match_no_route_are_a_json_404(api, settings, path):
    settings.DEBUG = True  # Django's technical 404 page answers unmatched paths in debug otherwise
    assert_error_shape(api.get(path), 404, "not_found")


def test_an_order_id_beyond_any_stored_one_is_a_json_404(api):
    assert_error_shape(api.get("/api/trading/orders/99999999999999999999999"), 404)


def test_page_past_the_end_is_a_json_404(api):
    assert_error_shape(api.get(f"{HISTORY}?page=9"), 404, "not_found")


def test_anonymous_and_non_staff_are_refused_in_the_error_shape(client, non_staff_user):
    assert_error_shape(client.get(HISTORY), 403, "not_authenticated")
    client.force_login(non_staff_user)
    assert_error_shape(client.get(HISTORY), 403, "permission_denied")


def test_a_method_the_endpoint_lacks_is_a_json_405(api):
    body = assert_error_shape(api.post(HISTORY, {}), 405, "method_not_allowed")
    assert "POST" in body["error"]


def test_an_unacceptable_media_type_is_a_json_406(api):
    assert_error_shape(api.get(HISTORY, HTTP_ACCEPT="text/html"), 406, "not_acceptable")


class RefuseAll(BaseThrottle):
    def allow_request(self, request, view):
        return False

    def wait(self):
        return 7


def test_throttled_requests_are_a_json_429_with_retry_after(api, monkeypatch):
    monkeypatch.setattr(trading_api.OrderHistoryView, "throttle_classes", [RefuseAll])

    response = api.get(HISTORY)

    body = assert_error_shape(response, 429, "throttled")
    assert body["retry_after"] == 7 and response["Retry-After"] == "7"


def test_an_unexpected_exception_is_a_json_500_with_a_logged_id_and_no_traceback(api, monkeypatch, settings, caplog):
    settings.DEBUG = True

    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(trading_api, "order_history", broken)
    with caplog.at_level(logging.ERROR, logger="aktienanalyse.rest"):
        response = api.get(HISTORY)

    body = assert_error_shape(response, 500, "server_error")
    assert "secret internals" not in response.content.decode()
    [record] = [r for r in caplog.records if r.name == "aktienanalyse.rest"]
    assert body["error_id"] in record.getMessage() and record.exc_info[0] is RuntimeError


def test_a_failure_while_rendering_the_answer_is_a_json_500(api, monkeypatch, settings):
    settings.DEBUG = True

    def broken_render(self, data, accepted_media_type=None, renderer_context=None):
        raise ValueError("cannot encode")

    monkeypatch.setattr(trading_api.OrderHistoryView.renderer_classes[0], "render", broken_render)
    assert_error_shape(api.get(HISTORY), 500, "server_error")


def test_the_openapi_schema_is_for_staff_only(client, trader, non_staff_user):
    assert_error_shape(client.get("/api/schema/"), 403, "not_authenticated")
    client.force_login(non_staff_user)
    assert_error_shape(client.get("/api/schema/"), 403, "permission_denied")
    client.force_login(trader)
    assert client.get("/api/schema/").status_code == 200
