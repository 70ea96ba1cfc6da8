"""Security headers: the Content-Security-Policy on every page (which has no inline code), HSTS, check --deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.fixtures.servers import BASE_DIR
from tests.fixtures.settings_process import load_settings
from tests.fixtures.users import grant

pytestmark = pytest.mark.django_db

POLICY = "Content-Security-Policy"


class InlineCode(HTMLParser):
    """Collect what a policy without 'unsafe-inline' refuses: inline scripts, handlers, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.found += [f"<{tag} {name}=...>" for name in names if name.startswith("on") or name == "style"]
        self.found += [
            f"<{tag} href=javascript:...>"
            for value in names.values()
            if (value or "").strip().lower().startswith("javascript:")
        ]
        if tag == "style":
            self.found.append("<style>")
        if tag == "script":
            self._script = names

    def handle_data(self, data: str) -> None:
        script = self._script
        if script is not None and "src" not in script and script.get("type") != "application/json" and data.strip():
            self.found.append(f"inline <script>: {data.strip()[:60]}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def test_the_inline_code_finder_finds_what_the_policy_refuses():
    found = inline_code(
        '<script>alert(1)</script><script src="/a.js"></script><script type="application/json">{}</script>'
        '<button onclick="x()">b</button><p style="color:red"></p><style>p{}</style><a href="javascript:x()">a</a>'
    )
    assert len(found) == 5, found


@pytest.fixture
def operator(trader):
    grant(trader, "realtime.monitor_gateway")
    return trader


@pytest.mark.parametrize(
    "path",
    [
        "/login/",
        "/",
        "/monitoring/",
        "/monitoring/inspector/",
        "/admin/",
        "/admin/trading/order/",
        "/admin/auth/user/add/",
        "/api/trading/orders/history",
        "/api/schema/",
        "/api/nothing",
    ],
)
def test_every_page_has_the_policy_and_no_inline_code(client, operator, portfolio, path, django_user_model):
    if path.startswith("/admin/"):
        client.force_login(django_user_model.objects.create_superuser("root", password="root-pass-12345"))
    elif path != "/login/":
        client.force_login(operator)

    response = client.get(path)

    assert response.status_code in {200, 404}, (path, response.status_code)
    policy = response[POLICY]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "unsafe" not in policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    if response["Content-Type"].startswith("text/html"):
        assert inline_code(response.content.decode()) == []


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "s" * 20 + "-a-long-random-production-key-0123456789",
    "DJANGO_ALLOWED_HOSTS": "desk.example.com",
}


def production_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    return {**env, **PRODUCTION, **extra}


def test_check_deploy_is_clean_in_production():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_turns_on_hsts_https_redirect_and_secure_cookies():
    result = load_settings(
        "settings.SECURE_HSTS_SECONDS, settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, "
        "settings.CSRF_COOKIE_SECURE",
        drop=("DJANGO_",),
        **PRODUCTION,
    )
    assert result.stdout.split() == [str(365 * 24 * 3600), "True", "True", "True"], result.stderr


def test_https_answers_carry_hsts_and_plain_http_is_redirected_except_probes(client, settings):
    settings.SECURE_HSTS_SECONDS = 365 * 24 * 3600
    settings.SECURE_SSL_REDIRECT = True

    secure = client.get("/login/", secure=True)
    plain = client.get("/login/")
    probe = client.get(reverse("healthz"))

    assert secure["Strict-Transport-Security"] == "max-age=31536000"
    assert (plain.status_code, plain["Location"]) == (301, "https://testserver/login/")
    assert probe.status_code == 200
