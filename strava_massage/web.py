"""Web plumbing shared by every page: CSRF, error pages, security headers, health."""

from __future__ import annotations

import hmac
import logging

from flask import Flask, Request, Response, abort, current_app, jsonify, render_template, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_wtf import CSRFProtect
from flask_wtf.csrf import CSRFError
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from strava_massage.config import PRODUCT_NAME

csrf = CSRFProtect()
log = logging.getLogger(__name__)

SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def init_app(app: Flask) -> None:
    """Register CSRF protection, error pages, headers and /healthz."""
    app.session_interface = CookieSessions()
    csrf.init_app(app)
    app.register_error_handler(CSRFError, expired_form)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
    app.after_request(security_headers)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/metrics", "metrics", metrics)
    app.context_processor(lambda: {"product_name": PRODUCT_NAME})


def wants_json() -> bool:
    """Machine callers (webhooks, health, JSON clients) get JSON errors, people get pages."""
    return request.path.startswith(("/webhooks/", "/healthz", "/metrics")) or (
        request.accept_mimetypes.best == "application/json"
    )


def http_error(e: HTTPException) -> tuple[Response | str, int]:
    """A helpful page (or short JSON) for 4xx/5xx, never a stack trace."""
    code = e.code or 500
    if wants_json():
        return jsonify(error=e.name.lower()), code
    title = _("Page not found") if code == 404 else e.name
    return render_template("errors/error.html", code=code, title=title), code


def expired_form(e: CSRFError) -> tuple[Response | str, int]:
    """A form without a valid token: nothing changed; say how to go on, not "Bad Request"."""
    if wants_json():
        return jsonify(error="csrf token missing or invalid"), 400
    return render_template("errors/expired_form.html"), 400


def unexpected_error(e: Exception) -> tuple[Response | str, int]:
    """Log the bug with its traceback; show the visitor a calm page."""
    if isinstance(e, HTTPException):
        return http_error(e)
    log.exception("unhandled error on %s %s", request.method, request.path)
    if wants_json():
        return jsonify(error="internal error"), 500
    return render_template("errors/error.html", code=500, title=_("Something went wrong")), 500


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building a signer for a request with no cookie.

    Flask builds one for every request; webhooks, health checks and first visits carry no
    cookie, and on the webhook intake that work was a tenth of the request's.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """An empty session when there is no cookie to read, else Flask's own."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def security_headers(response: Response) -> Response:
    """No framing, no sniffing, a strict content policy on pages; a view's own value stands."""
    # One pass over the headers: Headers.setdefault raises and catches a KeyError per miss.
    present = {key.lower() for key, _ in response.headers.items()}
    for key, value in SECURITY_HEADERS:
        if key.lower() not in present:
            response.headers.add(key, value)
    if response.mimetype == "text/html" and "content-security-policy" not in present:
        response.headers.add("Content-Security-Policy", CSP)
    return response


def healthz() -> tuple[Response, int]:
    """Liveness and readiness: the database and the queue both answer."""
    checks: dict[str, str] = {}
    try:
        with current_app.extensions["db"].engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as e:
        checks["database"] = f"error: {type(e).__name__}"
    try:
        checks["queue_depth"] = str(current_app.extensions["tasks"].depth())
        checks["queue"] = "ok"
    except Exception as e:
        checks["queue"] = f"error: {type(e).__name__}"
    ok = checks["database"] == "ok" and checks["queue"] == "ok"
    return jsonify(status="ok" if ok else "unavailable", **checks), 200 if ok else 503


def metrics() -> Response:
    """Counters in Prometheus's text format; behind a bearer token when METRICS_TOKEN is set."""
    expected = current_app.config.get("METRICS_TOKEN")
    if expected:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), str(expected).encode()):
            abort(401)
    body = current_app.extensions["metrics"].render()
    return Response(body, content_type=CONTENT_TYPE_LATEST)
