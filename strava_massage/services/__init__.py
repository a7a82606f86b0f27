"""Builds the collaborators a job needs from the app's configuration, once per app."""

from __future__ import annotations

from flask import Flask, current_app

from strava_massage.services.context import Services
from strava_massage.services.metrics import Metrics
from strava_massage.strava.budget import Budget
from strava_massage.strava.client import StravaAPI
from strava_massage.strava.crypto import TokenBox


def init_app(app: Flask) -> Services:
    """Create the Strava adapter, token box and job services for this app."""
    cfg = app.config
    client_id = cfg.get("STRAVA_CLIENT_ID")
    strava = StravaAPI(
        cfg["STRAVA_BASE_URL"],
        int(client_id) if client_id else None,
        cfg.get("STRAVA_CLIENT_SECRET"),
        api_url=cfg.get("STRAVA_API_URL"),
        disconnect=cfg["STRAVA_DISCONNECT"],
        timeout=cfg["STRAVA_TIMEOUT_SECONDS"],
        window_seconds=cfg["RATE_WINDOW_SECONDS"],
    )
    strava.budget = Budget(
        app.extensions["db"], cfg["RATE_WINDOW_SECONDS"], limits=cfg["STRAVA_RATE_LIMITS"]
    )
    tasks = app.extensions["tasks"]
    metrics = Metrics()
    strava.transport.on_call = metrics.count_call
    metrics.watch(app.extensions["db"], strava.budget, tasks)
    app.extensions["metrics"] = metrics
    svc = Services(
        db=app.extensions["db"],
        strava=strava,
        box=TokenBox(cfg["TOKEN_KEYS"]),
        enqueue=tasks.enqueue,
        token_margin=cfg["TOKEN_REFRESH_MARGIN_SECONDS"],
        lease_seconds=cfg["SWEEP_AFTER_SECONDS"],
        max_attempts=cfg["MAX_ATTEMPTS"],
        retry_base_seconds=cfg["RETRY_BASE_SECONDS"],
        on_outcome=metrics.count_outcome,
    )
    app.extensions["services"] = svc
    return svc


def get() -> Services:
    """The current app's job services."""
    svc: Services = current_app.extensions["services"]
    return svc
