"""Settings from the environment (and a `.env` file), checked once at start-up."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

PRODUCT_NAME = "Legwork"
DEFAULT_STRAVA_BASE_URL = "https://www.strava.com"
# Only the demo and the tests fall back to it; a real deployment must say where Strava calls.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:5000"
# Hosts that mean "this machine": a PUBLIC_URL on one of them is served by `serve` itself.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0", "::1")  # noqa: S104
MAKE_FERNET_KEY = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)
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


def _environment() -> dict[str, str | None]:
    """The `.env` file of the working directory, overridden by the real environment."""
    return {**dotenv_values(Path.cwd() / ".env"), **os.environ}


def data_dir(overrides: dict[str, Any] | None = None) -> Path:
    """The folder for the embedded database, queue and brand assets, as an absolute path.

    DATA_DIR, else `instance/` in the working directory: never inside the installed package or
    the virtualenv, which a reinstall may delete.
    """
    value = (overrides or {}).get("DATA_DIR") or _environment().get("DATA_DIR") or "instance"
    return Path(str(value)).expanduser().resolve()


def load_config(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the settings mapping: defaults, then `.env`, then the environment, then overrides."""
    env = _environment()
    overrides = overrides or {}

    def get(name: str, default: Any = None) -> Any:
        """An override, else the environment (empty counts as unset), else the default."""
        return overrides.get(name, env.get(name) or default)

    def number(name: str, default: float, kind: type = int, least: float = 0) -> Any:
        """A whole or decimal number setting, at least `least`; ConfigError names it if not."""
        value = get(name, default)
        what = "a whole number" if kind is int else "a number"
        try:
            parsed = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be {what}, not {str(value)!r}") from None
        if parsed < least:
            raise ConfigError(f"{name} must be {what} of at least {least:g}, not {value}")
        return parsed

    instance = Path(instance_path)
    cfg: dict[str, Any] = {
        "TESTING": bool(overrides.get("TESTING", False)),
        "DEMO": bool(overrides.get("DEMO", env.get("STRAVA_MASSAGE_DEMO") == "1")),
        "STRAVA_CLIENT_ID": get("STRAVA_CLIENT_ID"),
        "STRAVA_CLIENT_SECRET": get("STRAVA_CLIENT_SECRET"),
        "STRAVA_VERIFY_TOKEN": get("STRAVA_VERIFY_TOKEN"),
        # The callback URL's secret path segment; unset, it is derived from SECRET_KEY.
        "WEBHOOK_SECRET": get("WEBHOOK_SECRET"),
        # The data folder (data_dir()): the app's instance path, home of the defaults below.
        "DATA_DIR": str(instance),
        # Where the operator saves Strava's official button and logo (strava_massage/brand.py).
        "BRAND_DIR": get("BRAND_DIR", str(instance / "brand")),
        "STRAVA_BASE_URL": str(get("STRAVA_BASE_URL", DEFAULT_STRAVA_BASE_URL)).rstrip("/"),
        # The API's base, when it is not {STRAVA_BASE_URL}/api/v3 (Strava moves it to
        # https://api-v3.strava.com, no /api/v3 prefix, from 4 January 2027; OAuth stays).
        "STRAVA_API_URL": str(get("STRAVA_API_URL", "")).rstrip("/") or None,
        # How "disconnect" revokes the app at Strava: deauthorize (retired 1 June 2027) or revoke.
        "STRAVA_DISCONNECT": str(get("STRAVA_DISCONNECT", _default_disconnect())),
        # Required in production (_check_required); the demo and the tests may leave it out.
        "PUBLIC_URL": str(get("PUBLIC_URL", "")).rstrip("/"),
        "DATABASE_URL": _normalize_database_url(
            str(get("DATABASE_URL", f"sqlite:///{instance / 'strava-massage.db'}"))
        ),
        "QUEUE_URL": str(get("QUEUE_URL", f"sqlite:///{instance / 'queue.db'}")),
        # Connections per process: a web process needs one per request thread, a worker one per
        # job thread plus its scheduler; PostgreSQL's max_connections must cover every process.
        "DB_POOL_SIZE": number("DB_POOL_SIZE", 10, least=1),
        "DB_MAX_OVERFLOW": number("DB_MAX_OVERFLOW", 5),
        "DB_POOL_TIMEOUT": number("DB_POOL_TIMEOUT", 10, float),
        "QUEUE_MAX_CONNECTIONS": number("QUEUE_MAX_CONNECTIONS", 20, least=1),
        # Lets several deployments (or test runs) share one Redis without sharing tasks.
        "QUEUE_NAME": str(get("QUEUE_NAME", "strava-massage")),
        "SECRET_KEY": get("SECRET_KEY"),
        # Older session keys, still accepted for reading, so rotating SECRET_KEY logs nobody out.
        "SECRET_KEY_FALLBACKS": _split(get("SECRET_KEY_FALLBACKS", "")),
        "TOKEN_KEYS": get("TOKEN_KEYS"),
        # A claim's lease: renewed every quarter of it while its job runs, so it runs out only
        # when the holder died; the sweep then hands the event out again.
        "SWEEP_AFTER_SECONDS": number("SWEEP_AFTER_SECONDS", 20, float),
        # How often one worker (of all of them) sweeps the events table for lost work.
        "SWEEP_INTERVAL_SECONDS": number("SWEEP_INTERVAL_SECONDS", 15, float),
        # A runner with no event for this many days is asked about once (has access been
        # revoked?), a batch an IDLE_CHECK_INTERVAL_SECONDS, by one worker of all of them.
        "IDLE_CHECK_DAYS": number("IDLE_CHECK_DAYS", 30, float),
        "IDLE_CHECK_INTERVAL_SECONDS": number("IDLE_CHECK_INTERVAL_SECONDS", 3600, float),
        "WORKER_THREADS": number("WORKER_THREADS", 2, least=1),
        "STRAVA_TIMEOUT_SECONDS": number("STRAVA_TIMEOUT_SECONDS", 10, float),
        # Refresh a token this long before Strava says it expires, so a call never races it.
        "TOKEN_REFRESH_MARGIN_SECONDS": number("TOKEN_REFRESH_MARGIN_SECONDS", 300),
        "RATE_WINDOW_SECONDS": number("RATE_WINDOW_SECONDS", 900, least=1),
        # Retries of Strava 5xx, timeouts and connection errors: attempts, and the first wait.
        "MAX_ATTEMPTS": number("MAX_ATTEMPTS", 6, least=1),
        "RETRY_BASE_SECONDS": number("RETRY_BASE_SECONDS", 5, float),
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
        "MAX_REQUEST_BYTES": number("MAX_REQUEST_BYTES", 1024 * 1024, least=1),
        # Proxies in front that set X-Forwarded-For/-Proto (1 on most platforms): whose address
        # the staff login throttle counts. 0 trusts no such header.
        "TRUSTED_PROXIES": number("TRUSTED_PROXIES", 0),
    }
    cfg.update({k: v for k, v in overrides.items() if k not in cfg or k in ("TESTING", "DEMO")})
    if not cfg["PUBLIC_URL"] and (cfg["TESTING"] or cfg["DEMO"]):
        cfg["PUBLIC_URL"] = DEFAULT_PUBLIC_URL
    _check_required(cfg)
    if not (cfg["TESTING"] or cfg["DEMO"] or get("DATABASE_URL")):
        _check_moved_data(instance)
    return cfg


def earlier_data_dir() -> Path:
    """Where earlier versions kept the data of a non-editable install: Flask's default
    instance folder, inside the virtualenv."""
    return Path(sys.prefix) / "var" / "strava_massage-instance"


def _check_moved_data(instance: Path) -> None:
    """Refuse to start on an empty database while the runners' data is still in the old place."""
    earlier = earlier_data_dir()
    if (earlier / "strava-massage.db").is_file() and not (instance / "strava-massage.db").exists():
        raise ConfigError(
            f"the data is in {earlier} (inside the virtualenv), no longer read from there: "
            f"stop the service and move that folder's files to {instance}, or set "
            f"DATA_DIR={earlier}"
        )


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


def _check_token_keys(keys: str | None) -> None:
    """Every key in TOKEN_KEYS must open a Fernet box (the message never shows a key)."""
    if not keys:
        return
    from cryptography.fernet import Fernet

    parts = [k.strip() for k in str(keys).split(",") if k.strip()]
    for number, key in enumerate(parts, 1):
        try:
            Fernet(key.encode())
        except ValueError:
            which = "TOKEN_KEYS" if len(parts) == 1 else f"key {number} of TOKEN_KEYS"
            raise ConfigError(
                f"{which} is not a Fernet key (44 characters of url-safe base64); "
                f"make one with: {MAKE_FERNET_KEY}"
            ) from None
    if not parts:
        raise ConfigError(f"TOKEN_KEYS holds no key; make one with: {MAKE_FERNET_KEY}")


def check_public_url_port(public_url: str, port: int) -> None:
    """A PUBLIC_URL on this machine must name the port `serve` listens on, or Strava's
    redirects and the webhook go nowhere."""
    from urllib.parse import urlsplit

    parts = urlsplit(public_url)
    if parts.hostname not in LOCAL_HOSTS:
        return
    try:
        expected = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError(f"PUBLIC_URL has no valid port: {public_url}") from None
    if expected != port:
        raise ConfigError(
            f"PUBLIC_URL is {public_url} (port {expected}) but serve listens on port {port}: "
            f"set PUBLIC_URL=http://{parts.hostname}:{port} or run serve --port {expected}"
        )


def _check_required(cfg: dict[str, Any]) -> None:
    """Fail at start-up, naming the variable, when a required secret is missing."""
    relaxed = cfg["TESTING"] or cfg["DEMO"]
    required = ["STRAVA_VERIFY_TOKEN"]
    if not relaxed:
        required += [
            "STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET", "SECRET_KEY", "TOKEN_KEYS", "PUBLIC_URL",
        ]  # fmt: skip
    missing = [name for name in required if not cfg.get(name)]
    if missing:
        hint = (
            " (PUBLIC_URL: the https address Strava will call, e.g. https://legwork.example.com)"
            if "PUBLIC_URL" in missing
            else ""
        )
        raise ConfigError(
            "missing required setting(s): "
            + ", ".join(missing)
            + hint
            + ". Set them in the environment or in a .env file (see README, Configuration)."
        )
    if not str(cfg["PUBLIC_URL"]).startswith(("https://", "http://")):
        raise ConfigError(
            "PUBLIC_URL must be the address Strava will call, starting with https:// "
            "(e.g. https://legwork.example.com)"
        )
    _check_token_keys(cfg.get("TOKEN_KEYS"))
    if cfg.get("STRAVA_DISCONNECT") not in ("deauthorize", "revoke"):
        raise ConfigError("STRAVA_DISCONNECT must be deauthorize or revoke")
    client_id = cfg.get("STRAVA_CLIENT_ID")
    if client_id is not None and not str(client_id).isdigit():
        raise ConfigError("STRAVA_CLIENT_ID must be the numeric id of your Strava API application")
    if cfg.get("QUEUE_URL") and not str(cfg["QUEUE_URL"]).startswith(
        ("sqlite:///", "redis://", "rediss://")
    ):
        raise ConfigError("QUEUE_URL must start with sqlite:///, redis:// or rediss://")
