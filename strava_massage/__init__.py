"""Legwork: recovery notes and massage reminders on a runner's Strava runs."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Flask

from strava_massage.paths import TEMPLATES_DIR

__version__ = "0.1.0"

log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the web app: settings, database, queue, Strava adapter, blueprints."""
    import webhooks
    from strava_massage import config, db, services, web
    from strava_massage.web import brand, clinic_pages, clinic_wording, i18n, pages, runner_pages
    from strava_massage.worker import queue

    # The data folder is the working directory's instance/ (or DATA_DIR), not Flask's default,
    # which for an installed package lies inside the virtualenv: deleting that lost every runner.
    app = Flask(
        __name__,
        instance_path=str(config.data_dir(test_config)),
        instance_relative_config=True,
        template_folder=str(TEMPLATES_DIR),
    )
    settings = config.load_config(app.instance_path, test_config)
    _fill_ephemeral_secrets(settings)
    app.config.update(settings)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Secure cookies need HTTPS; a local http:// PUBLIC_URL would never get them back.
        SESSION_COOKIE_SECURE=settings["PUBLIC_URL"].startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,
    )
    configure_logging(app)

    db.init_app(app)
    queue.init_app(app)
    services.init_app(app)
    web.init_app(app)
    brand.init_app(app)
    i18n.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(runner_pages.bp)
    app.register_blueprint(clinic_pages.bp)
    app.register_blueprint(clinic_wording.bp)
    webhooks.init_app(app)
    app.register_blueprint(webhooks.bp)
    # The webhook edge is called by Strava, which has no CSRF token to send.
    web.csrf.exempt(webhooks.bp)
    from strava_massage import cli

    cli.register(app)
    return app


def _fill_ephemeral_secrets(settings: dict[str, Any]) -> None:
    """Demo and tests may run without secrets: make throwaway ones (never in production)."""
    if not (settings["TESTING"] or settings["DEMO"]):
        return
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = secrets.token_urlsafe(32)
    if not settings.get("TOKEN_KEYS"):
        from cryptography.fernet import Fernet

        settings["TOKEN_KEYS"] = Fernet.generate_key().decode()


def configure_logging(app: Flask) -> None:
    """One plain line per record on stderr, unless the host already set up logging."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    # stravalib logs every request's URL at INFO, and urllib3 logs connection details.
    logging.getLogger("stravalib").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # huey writes two lines for every task ("Executing", "executed in"), beside the worker's
    # own line per event. Its consumer's lines (start-up, periodic tasks) and every warning stay.
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("huey.consumer").setLevel(logging.INFO)
