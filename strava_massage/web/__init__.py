"""Web plumbing shared by every page: CSRF, request limits, login sessions, error pages,
security headers, health."""

from __future__ import annotations

import hmac
import io
import logging
from typing import IO, Any

from flask import (
    Flask,
    Request,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    session,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_wtf import CSRFProtect
from flask_wtf.csrf import CSRFError
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from strava_massage.config import PRODUCT_NAME
from strava_massage.db import get_session
from strava_massage.models import Athlete, ClinicStaff
from strava_massage.services import capacity

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


# The largest row id a URL or form may name (a BIGINT); a bigger number is no row at all.
MAX_ID = 2**63 - 1
# The clinic details form carries the logo (clinics.MAX_LOGO_BYTES) and a few short fields.
LOGO_FORM_BYTES = 256 * 1024
LOGO_ENDPOINTS = frozenset({"clinic.settings"})


def init_app(app: Flask) -> None:
    """Register request limits, login-session checks, CSRF protection, error pages, headers
    and /healthz."""
    hops = int(app.config.get("TRUSTED_PROXIES", 0))
    if hops:
        # The client address (login throttling) and scheme as the platform's proxies saw them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.request_class = BoundedRequest
    limit = int(app.config.get("MAX_REQUEST_BYTES", 1024 * 1024))
    app.config.update(
        MAX_CONTENT_LENGTH=limit,
        MAX_FORM_MEMORY_SIZE=min(limit, 256 * 1024),
        MAX_FORM_PARTS=100,
    )
    app.url_map.converters["int"] = BoundedInt
    app.session_interface = CookieSessions()
    # Before CSRFProtect's own check, which reads the form: an oversized body is refused unread.
    app.before_request(refuse_large_bodies)
    app.before_request(check_login_sessions)
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
    cookie.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """An empty session when there is no cookie to read, else Flask's own."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


class BoundedRequest(Request):
    """Flask's request, keeping uploaded files in memory: the body is capped at
    MAX_REQUEST_BYTES, so a large upload can never fill the server's temporary directory."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        """An in-memory buffer for one uploaded file (werkzeug's documented hook)."""
        return io.BytesIO()


class BoundedInt(IntegerConverter):
    """`<int:...>` in routes: at most 19 digits and at most MAX_ID, else 404 (never a 500 from
    a number the database cannot hold)."""

    regex = r"\d{1,19}"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def id_arg(value: str) -> int:
    """A row id from a query string: a positive whole number up to MAX_ID, else ValueError
    (which `request.args.get(..., type=id_arg)` turns into no value)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise ValueError("not a row id")
    number = int(value)
    if not 0 < number <= MAX_ID:
        raise ValueError("not a row id")
    return number


def refuse_large_bodies() -> None:
    """413 before anything reads a body over the limit (a larger one for the logo form).

    A declared length is judged here, unread; a chunked body is cut off by werkzeug once it
    passes the limit, while the form is read.
    """
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.endpoint in LOGO_ENDPOINTS:
        limit = max(limit, LOGO_FORM_BYTES)
        request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        abort(413)


RUNNER_KEYS = ("athlete_id", "athlete_v")
STAFF_KEYS = ("staff_id", "staff_v")


def check_login_sessions() -> None:
    """Forget a login whose person ended their sessions since (logout elsewhere, a password
    change or reset, removal): a copied cookie stops working with the original."""
    if request.endpoint == "static" or not ("athlete_id" in session or "staff_id" in session):
        return
    if "athlete_id" in session:
        athlete = get_session().get(Athlete, session["athlete_id"])
        if athlete is None or session.get("athlete_v") != athlete.session_version:
            for key in RUNNER_KEYS:
                session.pop(key, None)
    if "staff_id" in session:
        staff = get_session().get(ClinicStaff, session["staff_id"])
        if staff is None or session.get("staff_v") != staff.session_version:
            for key in STAFF_KEYS:
                session.pop(key, None)
    # End the check's transaction: some views go on to call Strava, or open sessions of their
    # own, and on SQLite an open transaction holds the write lock.
    get_session().commit()


def log_in_runner(athlete: Athlete) -> None:
    """Start a runner's login session in this browser (the caller cleared it first)."""
    session["athlete_id"] = athlete.id
    session["athlete_v"] = athlete.session_version
    session.permanent = True


def log_in_staff(staff: ClinicStaff) -> None:
    """Start a staff member's login session in this browser (the caller cleared it first)."""
    session["staff_id"] = staff.id
    session["staff_v"] = staff.session_version
    session.permanent = True


def end_runner_sessions(athlete: Athlete) -> None:
    """End every login session of the runner, in every browser (the caller commits)."""
    # Computed by the database at flush, so two at once both count.
    athlete.session_version = Athlete.session_version + 1


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
    # A detail for the operator, not a failure: Strava refusing new runners (app at capacity).
    checks["strava_athlete_limit"] = capacity.status(current_app.extensions["tasks"])
    ok = checks["database"] == "ok" and checks["queue"] == "ok"
    return jsonify(status="ok" if ok else "unavailable", **checks), 200 if ok else 503


def metrics() -> Response:
    """Counters in Prometheus's text format; in production only behind METRICS_TOKEN."""
    expected = current_app.config.get("METRICS_TOKEN")
    # They show the app's load and its runners' activity: a public (https) site without a token
    # keeps them to itself, answering as if there were no such page; a local one stays open.
    if not expected and str(current_app.config.get("PUBLIC_URL", "")).startswith("https://"):
        abort(404)
    if expected:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), str(expected).encode()):
            abort(401)
    body = current_app.extensions["metrics"].render()
    return Response(body, content_type=CONTENT_TYPE_LATEST)
