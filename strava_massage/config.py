"""Settings from the environment (and a `.env` file), checked once at start-up."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

PRODUCT_NAME = "Legwork"
DEFAULT_STRAVA_BASE_URL = "https://www.strava.com"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"
STRAVA_SCOPES = ("read", "activity:read_all", "activity:write")
DEAUTHORIZE_RETIRES = dt.date(2027, 6, 1)


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; the message names the variable."""


def _normalize_database_url(url: str) -> str:
    """Accept a platform's `postgres://` URL and pick the psycopg 3 driver for PostgreSQL."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_config(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the settings mapping: defaults, then `.env`, then the environment, then overrides."""
    env: dict[str, str | None] = {**dotenv_values(Path.cwd() / ".env"), **os.environ}
    overrides = overrides or {}

    def get(name: str, default: Any = None) -> Any:
        """An override, else the environment (empty counts as unset), else the default."""
        return overrides.get(name, env.get(name) or default)

    instance = Path(instance_path)
    cfg: dict[str, Any] = {
        "TESTING": bool(overrides.get("TESTING", False)),
        "DEMO": bool(overrides.get("DEMO", env.get("STRAVA_MASSAGE_DEMO") == "1")),
        "STRAVA_CLIENT_ID": get("STRAVA_CLIENT_ID"),
        "STRAVA_CLIENT_SECRET": get("STRAVA_CLIENT_SECRET"),
        "STRAVA_VERIFY_TOKEN": get("STRAVA_VERIFY_TOKEN"),
        # The callback URL's secret path segment; unset, it is derived from SECRET_KEY.
        "WEBHOOK_SECRET": get("WEBHOOK_SECRET"),
        # Where the operator saves Strava's official button and logo (strava_massage/brand.py).
        "BRAND_DIR": get("BRAND_DIR", str(instance / "brand")),
        "STRAVA_BASE_URL": str(get("STRAVA_BASE_URL", DEFAULT_STRAVA_BASE_URL)).rstrip("/"),
        # The API's base, when it is not {STRAVA_BASE_URL}/api/v3 (Strava moves it to
        # https://api-v3.strava.com, no /api/v3 prefix, from 4 January 2027; OAuth stays).
        "STRAVA_API_URL": str(get("STRAVA_API_URL", "")).rstrip("/") or None,
        # How "disconnect" revokes the app at Strava: deauthorize (retired 1 June 2027) or revoke.
        "STRAVA_DISCONNECT": str(get("STRAVA_DISCONNECT", _default_disconnect())),
        "PUBLIC_URL": str(get("PUBLIC_URL", DEFAULT_PUBLIC_URL)).rstrip("/"),
        "DATABASE_URL": _normalize_database_url(
            str(get("DATABASE_URL", f"sqlite:///{instance / 'strava-massage.db'}"))
        ),
        "QUEUE_URL": str(get("QUEUE_URL", f"sqlite:///{instance / 'queue.db'}")),
        # Connections per process: a web process needs one per request thread, a worker one per
        # job thread plus its scheduler; PostgreSQL's max_connections must cover every process.
        "DB_POOL_SIZE": int(get("DB_POOL_SIZE", 10)),
        "DB_MAX_OVERFLOW": int(get("DB_MAX_OVERFLOW", 5)),
        "DB_POOL_TIMEOUT": float(get("DB_POOL_TIMEOUT", 10)),
        "QUEUE_MAX_CONNECTIONS": int(get("QUEUE_MAX_CONNECTIONS", 20)),
        # Lets several deployments (or test runs) share one Redis without sharing tasks.
        "QUEUE_NAME": str(get("QUEUE_NAME", "strava-massage")),
        "SECRET_KEY": get("SECRET_KEY"),
        # Older session keys, still accepted for reading, so rotating SECRET_KEY logs nobody out.
        "SECRET_KEY_FALLBACKS": _split(get("SECRET_KEY_FALLBACKS", "")),
        "TOKEN_KEYS": get("TOKEN_KEYS"),
        # A claim's lease: renewed every quarter of it while its job runs, so it runs out only
        # when the holder died; the sweep then hands the event out again.
        "SWEEP_AFTER_SECONDS": float(get("SWEEP_AFTER_SECONDS", 20)),
        # How often one worker (of all of them) sweeps the events table for lost work.
        "SWEEP_INTERVAL_SECONDS": float(get("SWEEP_INTERVAL_SECONDS", 15)),
        # A runner with no event for this many days is asked about once (has access been
        # revoked?), a batch an IDLE_CHECK_INTERVAL_SECONDS, by one worker of all of them.
        "IDLE_CHECK_DAYS": float(get("IDLE_CHECK_DAYS", 30)),
        "IDLE_CHECK_INTERVAL_SECONDS": float(get("IDLE_CHECK_INTERVAL_SECONDS", 3600)),
        "WORKER_THREADS": int(get("WORKER_THREADS", 2)),
        "STRAVA_TIMEOUT_SECONDS": float(get("STRAVA_TIMEOUT_SECONDS", 10)),
        # Refresh a token this long before Strava says it expires, so a call never races it.
        "TOKEN_REFRESH_MARGIN_SECONDS": int(get("TOKEN_REFRESH_MARGIN_SECONDS", 300)),
        "RATE_WINDOW_SECONDS": int(get("RATE_WINDOW_SECONDS", 900)),
        # Retries of Strava 5xx, timeouts and connection errors: attempts, and the first wait.
        "MAX_ATTEMPTS": int(get("MAX_ATTEMPTS", 6)),
        "RETRY_BASE_SECONDS": float(get("RETRY_BASE_SECONDS", 5)),
        # The app's non-upload limits (15 minutes, daily) until Strava's headers say otherwise.
        "STRAVA_RATE_LIMITS": _limits(get("STRAVA_RATE_LIMITS", "100,1000")),
        # When set, /metrics wants "Authorization: Bearer <token>" (it shows the app's load).
        "METRICS_TOKEN": get("METRICS_TOKEN"),
        # Whether clinic staff see the figures (distances, weekly totals, "due") a runner shares:
        # Strava's API agreement lets a user's Strava data be shown only to that user, so this
        # is the operator's decision, off by default (docs/clinics.md).
        "CLINIC_SHARED_FIGURES": _switch(
            get("CLINIC_SHARED_FIGURES", "off"), "CLINIC_SHARED_FIGURES"
        ),
        # The largest request body any page takes (the clinic logo form allows 256 KB at least).
        "MAX_REQUEST_BYTES": int(get("MAX_REQUEST_BYTES", 1024 * 1024)),
        # Proxies in front that set X-Forwarded-For/-Proto (1 on most platforms): whose address
        # the staff login throttle counts. 0 trusts no such header.
        "TRUSTED_PROXIES": int(get("TRUSTED_PROXIES", 0)),
    }
    cfg.update({k: v for k, v in overrides.items() if k not in cfg or k in ("TESTING", "DEMO")})
    _check_required(cfg)
    return cfg


def _default_disconnect() -> str:
    """Strava's deauthorize endpoint until it retires on 1 June 2027, its revoke endpoint after."""
    return "revoke" if dt.datetime.now(dt.UTC).date() >= DEAUTHORIZE_RETIRES else "deauthorize"


def _switch(value: Any, name: str) -> bool:
    """An on/off setting (a bool passes through)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("on", "true", "yes", "1"):
        return True
    if word in ("off", "false", "no", "0"):
        return False
    raise ConfigError(f"{name} must be on or off")


def _split(value: Any) -> list[str]:
    """A comma-separated setting as a list (a list passes through)."""
    if isinstance(value, list):
        return value
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _limits(value: Any) -> tuple[int, int]:
    """Parse "15-minute,daily" request limits."""
    if isinstance(value, tuple):
        return value
    try:
        short, daily = (int(part) for part in str(value).split(","))
    except ValueError:
        raise ConfigError("STRAVA_RATE_LIMITS must be two numbers, e.g. 100,1000") from None
    return short, daily


def _check_required(cfg: dict[str, Any]) -> None:
    """Fail at start-up, naming the variable, when a required secret is missing."""
    relaxed = cfg["TESTING"] or cfg["DEMO"]
    required = ["STRAVA_VERIFY_TOKEN"]
    if not relaxed:
        required += ["STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET", "SECRET_KEY", "TOKEN_KEYS"]
    missing = [name for name in required if not cfg.get(name)]
    if missing:
        raise ConfigError(
            "missing required setting(s): "
            + ", ".join(missing)
            + ". Set them in the environment or in a .env file (see README, Configuration)."
        )
    if cfg.get("STRAVA_DISCONNECT") not in ("deauthorize", "revoke"):
        raise ConfigError("STRAVA_DISCONNECT must be deauthorize or revoke")
    client_id = cfg.get("STRAVA_CLIENT_ID")
    if client_id is not None and not str(client_id).isdigit():
        raise ConfigError("STRAVA_CLIENT_ID must be the numeric id of your Strava API application")
    if cfg.get("QUEUE_URL") and not str(cfg["QUEUE_URL"]).startswith(
        ("sqlite:///", "redis://", "rediss://")
    ):
        raise ConfigError("QUEUE_URL must start with sqlite:///, redis:// or rediss://")
