"""Project set-up: settings from the environment, standard Django interfaces, demo data."""

import subprocess

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.fixtures.settings_process import load_settings


def start_settings(**env: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with the given environment (no other DJANGO_ variable)."""
    return load_settings("settings.DEBUG", drop=("DJANGO_",), **env)


def test_production_start_without_secret_key_stops_with_a_clear_message():
    result = start_settings(DJANGO_DEBUG="0", DJANGO_ALLOWED_HOSTS="desk.example.com")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_start_with_wildcard_host_stops_with_a_clear_message():
    result = start_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 50, DJANGO_ALLOWED_HOSTS="*")
    assert result.returncode != 0
    assert "contains '*'" in result.stderr


def test_production_start_with_secret_and_hosts_works():
    result = start_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 50, DJANGO_ALLOWED_HOSTS="desk.example.com")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_unreadable_boolean_setting_is_refused():
    result = start_settings(DJANGO_DEBUG="maybe")
    assert result.returncode != 0 and "DJANGO_DEBUG must be one of" in result.stderr


def flow_log_level(**env: str) -> str:
    """Return the event-flow logger's level as the settings set it with this environment."""
    out = load_settings("settings.LOGGING['loggers']['realtime.flow']['level']", drop=("DJANGO_", "REALTIME_"), **env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_flow_log_is_quiet_in_development_unless_asked_and_follows_the_log_level_in_production():
    production = {"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "desk.example.com"}

    assert flow_log_level(DJANGO_DEBUG="1") == "WARNING"  # `make run`: no line per tick
    assert flow_log_level(DJANGO_DEBUG="1", REALTIME_FLOW_LOG_LEVEL="info") == "INFO"
    assert flow_log_level(**production) == "INFO"
    assert flow_log_level(**production, DJANGO_LOG_LEVEL="DEBUG") == "DEBUG"


def test_redis_url_selects_channels_redis():
    backend = "settings.CHANNEL_LAYERS['default']['BACKEND']"
    out = load_settings(backend, drop=("REDIS_",), REDIS_URL="redis://127.0.0.1:6379/3")
    assert out.stdout.strip() == "realtime.server.layers.RedisChannelLayer"  # channels-redis core, group sends batched
    from channels_redis.core import RedisChannelLayer as Core

    from realtime.server.layers import RedisChannelLayer

    assert issubclass(RedisChannelLayer, Core)
    out = load_settings(backend, drop=("REDIS_",))
    assert out.stdout.strip() == "channels.layers.InMemoryChannelLayer"


def test_daphne_serves_runserver():
    assert settings.INSTALLED_APPS[0] == "daphne"
    assert settings.ASGI_APPLICATION == "aktienanalyse.asgi.application"


@pytest.mark.django_db
def test_createsuperuser_noinput_works(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-admin-password-1")
    call_command("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com")
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password("a-long-admin-password-1")


@pytest.mark.django_db
def test_demo_data_is_idempotent_and_prints_the_same_login(capsys, tmp_path, settings):
    settings.DEMO_LOGIN_FILE = tmp_path / "login.txt"
    call_command("demo_data")
    first = capsys.readouterr().out
    call_command("demo_data")
    second = capsys.readouterr().out

    login_line = [line for line in first.splitlines() if line.startswith("Staff login:")]
    assert login_line and login_line == [line for line in second.splitlines() if line.startswith("Staff login:")]
    password = login_line[0].split("password ")[1].strip()
    user = get_user_model().objects.get(username="desk")
    assert user.is_staff and user.check_password(password)
    assert get_user_model().objects.filter(username="desk").count() == 1
    assert user.has_perm("trading.add_order") and not user.has_perm("realtime.view_system_events")  # a trader only


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    login = client.get("/login/")
    assert login.status_code == 200 and b'name="username"' in login.content


@pytest.mark.django_db
def test_staff_member_logs_in_and_sees_the_desk(client, staff_user):
    response = client.post("/login/", {"username": "anna", "password": "anna-pass-1234"})
    assert response.status_code == 302
    desk = client.get("/")
    assert desk.status_code == 200 and b'id="connection-status"' in desk.content


@pytest.mark.django_db
def test_non_staff_member_gets_no_desk(client, non_staff_user):
    client.force_login(non_staff_user)
    response = client.get("/")
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.django_db
def test_admin_is_available_to_superusers(client, superuser):
    client.force_login(superuser)
    assert client.get("/admin/").status_code == 200


def test_command_threads_default_by_database_and_a_pool_too_small_for_the_threads_stops_the_start():
    postgres = "postgres://postgres@127.0.0.1:5432/unused"
    threads = "[settings.REALTIME['COMMAND_THREADS'], settings.REALTIME['HANDSHAKE_THREADS']]"
    drop = ("DATABASE_", "REALTIME_")

    sqlite = load_settings(threads, drop=drop, DATABASE_URL="sqlite:///unused.sqlite3")
    assert (sqlite.returncode, sqlite.stdout.strip()) == (0, "[1, 1]"), sqlite.stderr
    pooled = load_settings(threads, drop=drop, DATABASE_URL=postgres)
    assert (pooled.returncode, pooled.stdout.strip()) == (0, "[4, 4]"), pooled.stderr

    small = load_settings(threads, drop=drop, DATABASE_URL=postgres, DATABASE_POOL_MAX="8")
    assert small.returncode != 0
    assert "DATABASE_POOL_MAX (8) must exceed REALTIME_HANDSHAKE_THREADS + REALTIME_COMMAND_THREADS (8)" in small.stderr
    fitted = load_settings(
        threads, drop=drop, DATABASE_URL=postgres, DATABASE_POOL_MAX="8", REALTIME_COMMAND_THREADS="3"
    )
    assert (fitted.returncode, fitted.stdout.strip()) == (0, "[3, 4]"), fitted.stderr
    none = load_settings(threads, drop=drop, DATABASE_URL=postgres, REALTIME_COMMAND_THREADS="0")
    assert none.returncode != 0 and "REALTIME_COMMAND_THREADS must be at least 1" in none.stderr
