"""The webhook edge: check, store, enqueue, answer. The work itself happens in the worker."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import psycopg
from flask import Blueprint, Response, current_app, jsonify, request
from psycopg import pq
from sqlalchemy import DateTime, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from strava_massage.logfmt import life_line
from strava_massage.models import utcnow
from strava_massage.web import SECURITY_HEADERS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from strava_massage.db import Database
    from strava_massage.queue import Tasks

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)

PATH = "/webhooks/strava"
MAX_BODY_BYTES = 64 * 1024
OBJECT_TYPES = frozenset({"activity", "athlete"})
ASPECT_TYPES = frozenset({"create", "update", "delete"})

# The common answers, encoded once.
ACCEPTED = b'{"status":"accepted"}\n'
DUPLICATE = b'{"status":"duplicate"}\n'
IGNORED = b'{"reason":"unknown athlete","status":"ignored"}\n'
# What every page gets from web.security_headers, for the answers given outside Flask.
_HEADERS = [("Content-Type", "application/json"), *SECURITY_HEADERS]


class BadEvent(ValueError):
    """The body is not a Strava event; the message is the short reason sent back."""


def _reason(status: int, reason: str) -> tuple[Response, int]:
    """A short JSON answer from a Flask view."""
    return jsonify(error=reason), status


def _error(reason: str) -> bytes:
    """A short JSON error body, as the Flask views write it."""
    return json.dumps({"error": reason}, separators=(",", ":")).encode() + b"\n"


@bp.get("/strava")
def handshake() -> tuple[Response, int]:
    """Answer Strava's subscription check by echoing the challenge if the token matches."""
    mode = request.args.get("hub.mode")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge")
    if mode != "subscribe" or challenge is None:
        return _reason(400, "expected hub.mode=subscribe with a hub.challenge")
    expected = current_app.config["STRAVA_VERIFY_TOKEN"]
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return _reason(403, "verify token does not match")
    return jsonify({"hub.challenge": challenge}), 200


class Intake:
    """WSGI middleware that answers Strava's event POSTs itself; every other request goes on.

    The intake is the service's hottest path and needs none of Flask's machinery (request
    context, routing, session, CSRF, hooks). Under load that machinery cost more than storing
    and queueing the event, a quarter of the intake's throughput (benchmarks/README.md), so
    the POST is read with werkzeug's Request alone. The subscription handshake and any other
    method on the path still go to the Flask app, like every page.
    """

    def __init__(self, app: WSGIApplication, db: Database, tasks: Tasks) -> None:
        self.app = app
        self.db = db
        self.tasks = tasks

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Answer a POST to the webhook path; hand anything else to the app."""
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        try:
            status, body = receive(Request(environ), self.db, self.tasks)
        except Exception:
            # The visitor gets the same calm answer as from any view; the log gets the bug.
            log.exception("unhandled error on POST %s", PATH)
            status, body = 500, _error("internal error")
        headers = [*_HEADERS, ("Content-Length", str(len(body)))]
        start_response(f"{status} {HTTP_STATUS_CODES[status]}", headers)
        return [body]


def receive(req: Request, db: Database, tasks: Tasks) -> tuple[int, bytes]:
    """Validate an event, store it once, queue it: the status and body to answer with.

    Strava wants the answer within 2 s, and retries anything but a 200.
    """
    if req.mimetype != "application/json":
        return 415, _error("content type must be application/json")
    req.max_content_length = MAX_BODY_BYTES
    try:
        event = parse_event(req.get_data(cache=False))
    except RequestEntityTooLarge:
        return 413, _error(f"body larger than {MAX_BODY_BYTES} bytes")
    except BadEvent as e:
        return 400, _error(str(e))

    try:
        with db.write_lock:
            outcome, event_id = store_event(db.intake, event)
    except SQLAlchemyError:
        log.exception("could not store webhook event")
        # Strava retries a non-200, so the event is not lost.
        return 503, _error("storage unavailable, retry later")
    if outcome == "wrong subscription":
        return 403, _error("unknown subscription")
    if outcome == "unknown athlete":
        # Not ours (or already disconnected): nothing to store, nothing to fetch.
        return 200, IGNORED
    if event_id is None:
        return 200, DUPLICATE
    _enqueue(tasks, event_id)
    # DEBUG, not INFO: the worker logs every event's outcome, and a second line per event
    # from the web process costs a third of the intake's throughput (benchmarks/README.md).
    if log.isEnabledFor(logging.DEBUG):
        object_ref = f"{event['object_type']}:{event['object_id']}"
        log.debug(life_line("received", event_id, event["owner_id"], object=object_ref))
    return 200, ACCEPTED


def _enqueue(tasks: Any, event_id: int) -> None:
    """Queue the stored event; if the queue is down, the sweep will pick the event up."""
    try:
        tasks.enqueue(event_id)
    except Exception:
        # Stored is what counts: the sweep re-enqueues it once the queue is back.
        log.exception("event %s stored but not enqueued", event_id)


def _int(body: dict[str, Any], name: str, minimum: int = 1) -> int:
    """A required integer field (JSON booleans are not integers here)."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadEvent(f"{name} must be an integer")
    if value < minimum or value > 2**63 - 1:
        raise BadEvent(f"{name} is out of range")
    return value


def parse_event(raw: bytes) -> dict[str, Any]:
    """Check a webhook body strictly and return its fields; BadEvent says what is wrong."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadEvent("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadEvent("body must be a JSON object")
    object_type = body.get("object_type")
    aspect_type = body.get("aspect_type")
    # A set lookup of a list or object would raise TypeError (a 500): check the type first.
    if not isinstance(object_type, str) or object_type not in OBJECT_TYPES:
        raise BadEvent("object_type must be activity or athlete")
    if not isinstance(aspect_type, str) or aspect_type not in ASPECT_TYPES:
        raise BadEvent("aspect_type must be create, update or delete")
    updates = body.get("updates", {})
    if updates is None:
        updates = {}
    if (
        not isinstance(updates, dict)
        or len(updates) > 20
        or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool) and len(k) <= 50
            for k, v in updates.items()
        )
    ):
        raise BadEvent("updates must be a small object of simple values")
    return {
        "object_type": object_type,
        "aspect_type": aspect_type,
        "object_id": _int(body, "object_id"),
        "owner_id": _int(body, "owner_id"),
        "subscription_id": _int(body, "subscription_id", minimum=0),
        "event_time": _int(body, "event_time", minimum=0),
        "updates": {k: str(v)[:200] for k, v in updates.items()},
    }


def dedupe_key(event: dict[str, Any]) -> str:
    """Identify an event by its content: Strava's retries of one event hash the same."""
    parts = [
        event[k] for k in ("object_type", "object_id", "aspect_type", "owner_id", "event_time")
    ]
    canonical = json.dumps([*parts, sorted(event["updates"].items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# One statement stores the event if its owner is ours and it names our subscription (any,
# before one is registered); only when it stores nothing does the check say why.
_INSERT_SQL = (
    "INSERT INTO events (dedupe_key, object_type, object_id, aspect_type, owner_id, updates, "
    "event_time, status, attempts, received_at, due_at) "
    "SELECT ?, ?, ?, ?, ?, {json}, ?, 'pending', 0, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM athletes WHERE id = ?) "
    "AND COALESCE((SELECT id FROM subscriptions LIMIT 1) = ?, TRUE) "
    "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
)
_CHECK_SQL = (
    "SELECT (SELECT id FROM subscriptions LIMIT 1), EXISTS (SELECT 1 FROM athletes WHERE id = ?)"
)


def _numbered(sql: str) -> bytes:
    """The statement with PostgreSQL's $1, $2, ... for its ? marks."""
    first, *rest = sql.split("?")
    return (first + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))).encode()


_SQLITE_INSERT = _INSERT_SQL.format(json="?")
_PG_INSERT = _numbered(_INSERT_SQL.format(json="?::json"))
_PG_CHECK = _numbered(_CHECK_SQL)
# The intake's prepared statements on each of its PostgreSQL connections, by name.
_PG_INSERT_NAME = b"legwork_intake_insert"
_PG_CHECK_NAME = b"legwork_intake_check"


def store_event(engine: Engine, event: dict[str, Any]) -> tuple[str, int | None]:
    """Store the event unless its twin is stored, its owner is not ours or its subscription is.

    The subscription is read each time, so a new one takes effect without a restart.
    Returns an outcome ("stored", "duplicate", "wrong subscription", "unknown athlete") and
    the new row's id when stored. On PostgreSQL (its intake has no ping), a connection the
    server dropped is replaced and the statement tried once more: it is idempotent through the
    dedupe key.
    """
    store = _store_postgres if engine.dialect.name == "postgresql" else _store_sqlite
    try:
        found = store(engine, event)
    except DBAPIError as e:
        if not e.connection_invalidated:
            raise
        found = store(engine, event)
    row_id, subscription_id, known = found
    if row_id is not None:
        return "stored", row_id
    if subscription_id is not None and event["subscription_id"] != subscription_id:
        return "wrong subscription", None
    if not known:
        return "unknown athlete", None
    return "duplicate", None


def _values(event: dict[str, Any], now: Any) -> tuple[Any, ...]:
    """The insert's parameters, in order, with `now` already in the driver's form."""
    return (
        dedupe_key(event),
        event["object_type"],
        event["object_id"],
        event["aspect_type"],
        event["owner_id"],
        json.dumps(event["updates"]),  # what SQLAlchemy's JSON type stores
        event["event_time"],
        now,
        now,
        event["owner_id"],
        event["subscription_id"],
    )


# What a store attempt found: the new row's id, else the subscription and whether the owner
# is known (read only when nothing was stored).
_Found = tuple[int | None, int | None, bool]


def _store_sqlite(engine: Engine, event: dict[str, Any]) -> _Found:
    """One attempt on SQLite, on the driver's own connection.

    SQLAlchemy's per-statement machinery cost three times the statements themselves on this
    path (benchmarks/README.md); the timestamps still go through its type processor, so rows
    read back exactly as the ORM wrote them.
    """
    params = _values(event, _timestamp(engine.dialect)(utcnow()))
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute(_SQLITE_INSERT, params)
        row = cur.fetchone()
        subscription_id, known = None, True
        if row is None:
            cur.execute(_CHECK_SQL, (event["owner_id"],))
            subscription_id, known = cur.fetchone() or (None, False)
        conn.commit()
    except sqlite3.Error as e:
        conn.rollback()
        # As SQLAlchemy would raise it, so callers handle one kind of database error.
        raise DBAPIError.instance(_SQLITE_INSERT, params, e, sqlite3.Error) from e
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()  # back to the pool
    return (int(row[0]) if row else None), subscription_id, bool(known)


@functools.cache
def _timestamp(dialect: Dialect) -> Callable[[Any], Any]:
    """SQLAlchemy's converter for a timezone-aware DateTime on this dialect."""
    return DateTime(timezone=True).bind_processor(dialect) or (lambda value: value)


def _store_postgres(engine: Engine, event: dict[str, Any]) -> _Found:
    """One attempt on PostgreSQL: libpq's prepared statements, through psycopg's pq layer.

    psycopg's cursor drives the protocol in Python and wakes three times a statement; libpq's
    exec_prepared sends, waits and reads in C with the GIL released. Under eight request
    threads that was a tenth of the intake's throughput (benchmarks/README.md). The intake's
    engine is in autocommit mode: the insert is its own durable transaction.
    """
    # libpq takes every parameter as text; PostgreSQL parses ISO timestamps with their offset.
    values = _values(event, utcnow().isoformat())
    params = [str(value).encode() for value in values]
    conn = engine.raw_connection()
    dbapi: psycopg.Connection[Any] = conn.dbapi_connection  # type: ignore[assignment]
    pgconn = dbapi.pgconn
    try:
        if "intake_prepared" not in conn.info:
            _prepare(dbapi)
            conn.info["intake_prepared"] = True
        try:
            result = _check(dbapi, pgconn.exec_prepared(_PG_INSERT_NAME, params))
        except psycopg.errors.InvalidSqlStatementName:
            # Something ran DISCARD ALL or DEALLOCATE ALL on this connection (a pooler, say).
            _prepare(dbapi)
            result = _check(dbapi, pgconn.exec_prepared(_PG_INSERT_NAME, params))
        if result.ntuples:
            return int(result.get_value(0, 0) or 0), None, True
        owner = str(event["owner_id"]).encode()
        check = _check(dbapi, pgconn.exec_prepared(_PG_CHECK_NAME, [owner]))
        subscription = check.get_value(0, 0)
        return None, (int(subscription) if subscription else None), check.get_value(0, 1) == b"t"
    except psycopg.Error as e:
        # The pool must not hand out a connection the server has closed: say so, and drop it.
        disconnect = pgconn.status == pq.ConnStatus.BAD
        if disconnect:
            conn.invalidate(e)
        raise DBAPIError.instance(
            _PG_INSERT.decode(), values, e, psycopg.Error, connection_invalidated=disconnect,
            dialect=engine.dialect,
        ) from e  # fmt: skip
    finally:
        conn.close()  # back to the pool


def _prepare(dbapi: psycopg.Connection[Any]) -> None:
    """Prepare the intake's statements on this connection."""
    for name, sql in ((_PG_INSERT_NAME, _PG_INSERT), (_PG_CHECK_NAME, _PG_CHECK)):
        _check(dbapi, dbapi.pgconn.prepare(name, sql))


def _check(dbapi: psycopg.Connection[Any], result: pq.abc.PGresult) -> pq.abc.PGresult:
    """The result, or psycopg's own exception for the error it reports."""
    if result.status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        return result
    raise psycopg.errors.error_from_result(result, encoding=dbapi.info.encoding)


@bp.errorhandler(HTTPException)
def http_error(e: HTTPException) -> tuple[Response, int]:
    """Webhook errors are short JSON, never an HTML page."""
    return _reason(e.code or 400, e.name.lower())
