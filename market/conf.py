"""The market app's settings: environment defaults, overridable through `settings.MARKET`."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number; got {raw!r}.") from None


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}.")


def _env_list(name: str) -> list[str]:
    return [item.strip().upper() for item in os.environ.get(name, "").split(",") if item.strip()]


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; got {raw!r}.")
    return raw


def symbol_map(raw: str, *, name: str) -> dict[str, str]:
    """Parse "SAP=SAP.DEX,SIE=SIE.DEX" into {our symbol: provider symbol}."""
    mapping: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise ImproperlyConfigured(
                f"{name} must be a comma-separated list of SYMBOL=PROVIDER_SYMBOL; got {item.strip()!r}."
            )
        mapping[ours.strip().upper()] = theirs.strip()
    return mapping


PROVIDERS = ("simulated", "alpha_vantage", "bitpanda", "replay")


DEFAULTS: dict[str, Any] = {
    # Run the simulated feed inside the server process when the channel layer is in-memory.
    "FEED_IN_PROCESS": _env_bool("MARKET_FEED_IN_PROCESS", True),
    # Seconds between two feed rounds (one tick per instrument and round).
    "FEED_INTERVAL": _env_float("MARKET_FEED_INTERVAL", 1.0),
    # Symbols the feed moves; empty: every instrument with a price.
    "FEED_SYMBOLS": _env_list("MARKET_FEED_SYMBOLS"),
    # Annualised volatility of the simulated random walk, and market seconds per real second.
    "SIMULATED_VOLATILITY": _env_float("MARKET_SIMULATED_VOLATILITY", 0.30),
    "SIMULATED_TIME_SCALE": _env_float("MARKET_SIMULATED_TIME_SCALE", 60.0),
    # Where prices come from: one of PROVIDERS.
    "PROVIDER": _env_choice("MARKET_PROVIDER", "simulated", PROVIDERS),
    # Seconds one provider HTTP request may take (connect, and each read), and the longest pause
    # between retries after consecutive failures (exponential from 2 s, with jitter).
    "PROVIDER_TIMEOUT": _env_float("MARKET_PROVIDER_TIMEOUT", 10.0),
    "PROVIDER_BACKOFF_MAX": _env_float("MARKET_PROVIDER_BACKOFF_MAX", 300.0),
    # Alpha Vantage GLOBAL_QUOTE: endpoint, key, our symbol to theirs (unmapped symbols get the
    # suffix, Xetra's ".DEX"), and the plan's call budget (the free tier's: 5 a minute, 25 a day;
    # 0 a day means no daily limit).
    "ALPHA_VANTAGE_URL": os.environ.get("MARKET_ALPHA_VANTAGE_URL", "").strip() or "https://www.alphavantage.co/query",
    # One key for the quote feed and `load_alpha_vantage`; ALPHA_VANTAGE_API_KEY, the name the
    # provider's own documentation uses, is read when the MARKET_ one is not set.
    "ALPHA_VANTAGE_API_KEY": (
        os.environ.get("MARKET_ALPHA_VANTAGE_API_KEY", "").strip()
        or os.environ.get("ALPHA_VANTAGE_API_KEY", "").strip()
    ),
    "ALPHA_VANTAGE_SYMBOLS": symbol_map(
        os.environ.get("MARKET_ALPHA_VANTAGE_SYMBOLS", ""), name="MARKET_ALPHA_VANTAGE_SYMBOLS"
    ),
    "ALPHA_VANTAGE_SUFFIX": os.environ.get("MARKET_ALPHA_VANTAGE_SUFFIX", ".DEX").strip(),
    "ALPHA_VANTAGE_CALLS_PER_MINUTE": _env_float("MARKET_ALPHA_VANTAGE_CALLS_PER_MINUTE", 5.0),
    "ALPHA_VANTAGE_CALLS_PER_DAY": _env_float("MARKET_ALPHA_VANTAGE_CALLS_PER_DAY", 25.0),
    # Bitpanda's public ticker: endpoint, our symbol to their asset (unmapped: the same), the
    # quote currency, and how often it is asked.
    "BITPANDA_URL": os.environ.get("MARKET_BITPANDA_URL", "").strip() or "https://api.bitpanda.com/v1/ticker",
    "BITPANDA_SYMBOLS": symbol_map(os.environ.get("MARKET_BITPANDA_SYMBOLS", ""), name="MARKET_BITPANDA_SYMBOLS"),
    "BITPANDA_CURRENCY": os.environ.get("MARKET_BITPANDA_CURRENCY", "").strip().upper() or "EUR",
    "BITPANDA_CALLS_PER_MINUTE": _env_float("MARKET_BITPANDA_CALLS_PER_MINUTE", 6.0),
    # Replay: the CSV file, market seconds played per real second, and whether to start over.
    "REPLAY_FILE": os.environ.get("MARKET_REPLAY_FILE", "").strip(),
    "REPLAY_SPEED": _env_float("MARKET_REPLAY_SPEED", 1.0),
    "REPLAY_LOOP": _env_bool("MARKET_REPLAY_LOOP", False),
    # Ticks kept per instrument; older ones are pruned.
    "HISTORY_LIMIT": int(_env_float("MARKET_HISTORY_LIMIT", 5000)),
    # Alert rules one user may hold.
    "ALERT_RULES_PER_USER": int(_env_float("MARKET_ALERT_RULES_PER_USER", 100)),
    # Analyses one user may have running at once, and start within any 60 seconds (every gateway
    # process counts the same rows). A running analysis older than ANALYSIS_LOST_AFTER seconds
    # no longer counts: the process computing it is presumed gone.
    "ANALYSES_RUNNING_PER_USER": int(_env_float("MARKET_ANALYSES_RUNNING_PER_USER", 3)),
    "ANALYSES_PER_MINUTE_PER_USER": int(_env_float("MARKET_ANALYSES_PER_MINUTE_PER_USER", 20)),
    "ANALYSIS_LOST_AFTER": _env_float("MARKET_ANALYSIS_LOST_AFTER", 300.0),
    # Ticks averaged as the baseline of a volume spike.
    "VOLUME_BASELINE_TICKS": int(_env_float("MARKET_VOLUME_BASELINE_TICKS", 20)),
    # Tick returns over which a volatility alert rule measures, unless the rule names its `window`.
    "VOLATILITY_WINDOW_TICKS": int(_env_float("MARKET_VOLATILITY_WINDOW_TICKS", 20)),
    # System status: seconds between checks (0: no periodic checks), and between repeats of an
    # unchanged `system.service_status`.
    "STATUS_INTERVAL": _env_float("MARKET_STATUS_INTERVAL", 10.0),
    "STATUS_HEARTBEAT": _env_float("MARKET_STATUS_HEARTBEAT", 60.0),
    # A feed whose last tick is older than this many seconds counts as stalled.
    "FEED_STALE_AFTER": _env_float("MARKET_FEED_STALE_AFTER", 10.0),
    # `system.performance_alert` thresholds (critical at twice the value).
    "DATABASE_LATENCY_ALERT_MS": _env_float("MARKET_DATABASE_LATENCY_ALERT_MS", 250.0),
    "CHANNEL_LAYER_LATENCY_ALERT_MS": _env_float("MARKET_CHANNEL_LAYER_LATENCY_ALERT_MS", 100.0),
    "BUS_LATENCY_ALERT_MS": _env_float("MARKET_BUS_LATENCY_ALERT_MS", 100.0),
    "ERROR_RATE_ALERT": _env_float("MARKET_ERROR_RATE_ALERT", 0.2),
    # The gateway process's own resources (`memory_usage`, `cpu_usage`): resident memory in MB and
    # CPU in percent of one core between two checks, each with a warning and a critical level.
    # An alert fires again only after the figure fell below RESOURCE_ALERT_CLEAR of its warning
    # level, and at most once per RESOURCE_ALERT_REPEAT seconds (a worse severity goes out at once).
    "MEMORY_ALERT_MB": _env_float("MARKET_MEMORY_ALERT_MB", 1024.0),
    "MEMORY_CRITICAL_MB": _env_float("MARKET_MEMORY_CRITICAL_MB", 2048.0),
    "CPU_ALERT_PERCENT": _env_float("MARKET_CPU_ALERT_PERCENT", 80.0),
    "CPU_CRITICAL_PERCENT": _env_float("MARKET_CPU_CRITICAL_PERCENT", 95.0),
    "RESOURCE_ALERT_CLEAR": _env_float("MARKET_RESOURCE_ALERT_CLEAR", 0.9),
    "RESOURCE_ALERT_REPEAT": _env_float("MARKET_RESOURCE_ALERT_REPEAT", 300.0),
    # Seconds a dependency probe may take before it counts as failed.
    "PROBE_TIMEOUT": _env_float("MARKET_PROBE_TIMEOUT", 2.0),
    # Fundamental analysis: per metric the value that counts as good and the one that counts as
    # bad (for P/E, P/B and debt/equity lower is better, for the rest higher is better; percent
    # figures in percent). A request may override any of them in `parameters.thresholds`.
    "FUNDAMENTAL_THRESHOLDS": {
        "pe_ratio": {"good": "15", "bad": "25"},
        "pb_ratio": {"good": "1.5", "bad": "4"},
        "dividend_yield": {"good": "3", "bad": "1"},
        "roe": {"good": "15", "bad": "5"},
        "debt_to_equity": {"good": "0.5", "bad": "2"},
        "eps_growth": {"good": "10", "bad": "0"},
        "revenue_growth": {"good": "5", "bad": "0"},
    },
    # Alpha Vantage (company overview, news sentiment) for `load_alpha_vantage`: the endpoint and
    # key above, and its own timeout.
    "ALPHA_VANTAGE_TIMEOUT": _env_float("MARKET_ALPHA_VANTAGE_TIMEOUT", 15.0),
}


def market_setting(name: str) -> Any:
    """Return one market setting, `settings.MARKET[name]` first, else the environment default."""
    overrides = getattr(settings, "MARKET", {}) or {}
    return overrides[name] if name in overrides else DEFAULTS[name]


def channel_layer_in_memory() -> bool:
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return backend.endswith("InMemoryChannelLayer")
