"""The webhook edge: check, store, enqueue, answer. The work itself happens in the worker."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import DateTime, Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from strava_massage.logfmt import life_line
from strava_massage.models import utcnow

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
OBJECT_TYPES = frozenset({"activity", "athlete"})
ASPECT_TYPES = frozenset({"create", "update", "delete"})


# The common answers, encoded once: jsonify's work per call is a tenth of the intake's.
ACCEPTED = b'{"status":"accepted"}\n'
DUPLICATE = b'{"status":"duplicate"}\n'
IGNORED = b'{"reason":"unknown athlete","status":"ignored"}\n'


class BadEvent(ValueError):
    """The body is not a Strava event; the message is the short reason sent back."""


def _reason(status: int, reason: str) -> tuple[Response, int]:
    """A short JSON answer."""
    return jsonify(error=reason), status


def _ok(body: bytes) -> tuple[Response, int]:
    """A 200 with one of the pre-encoded answers."""
    return Response(body, mimetype="application/json"), 200


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


@bp.post("/strava")
def receive() -> tuple[Response, int]:
    """Validate an event, store it once, queue it, and acknowledge within Strava's 2 s."""
    if request.mimetype != "application/json":
        return _reason(415, "content type must be application/json")
    request.max_content_length = MAX_BODY_BYTES
    try:
        event = parse_event(request.get_data(cache=False))
    except RequestEntityTooLarge:
        return _reason(413, f"body larger than {MAX_BODY_BYTES} bytes")
    except BadEvent as e:
        return _reason(400, str(e))

    db = current_app.extensions["db"]
    tasks = current_app.extensions["tasks"]
    try:
        with db.write_lock:
            outcome, event_id = store_event(db.intake, event)
    except SQLAlchemyError:
        log.exception("could not store webhook event")
        # Strava retries a non-200, so the event is not lost.
        return _reason(503, "storage unavailable, retry later")
    if outcome == "wrong subscription":
        return _reason(403, "unknown subscription")
    if outcome == "unknown athlete":
        # Not ours (or already disconnected): nothing to store, nothing to fetch.
        return _ok(IGNORED)

    if event_id is None:
        return _ok(DUPLICATE)
    _enqueue(tasks, event_id)
    # DEBUG, not INFO: the worker logs every event's outcome, and a second line per event
    # from the web process costs a third of the intake's throughput (benchmarks/README.md).
    if log.isEnabledFor(logging.DEBUG):
        object_ref = f"{event['object_type']}:{event['object_id']}"
        log.debug(life_line("received", event_id, event["owner_id"], object=object_ref))
    return _ok(ACCEPTED)


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


@dataclass(frozen=True)
class _Intake:
    """The intake's statements for one dialect, run on the driver's own connection.

    This is the service's hottest path: SQLAlchemy's per-statement machinery costs three times
    the statements themselves here (benchmarks/README.md). Values are still converted by
    SQLAlchemy's own type processors, so rows read back exactly as the ORM wrote them.
    """

    check: str
    insert: str
    timestamp: Callable[[Any], Any]

    @classmethod
    @functools.cache
    def for_dialect(cls, dialect: Dialect) -> _Intake:
        """Statements in the driver's parameter style, and the column converters."""
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        json_mark = "?" if dialect.name == "sqlite" else "%s::json"
        convert = DateTime(timezone=True).bind_processor(dialect)
        return cls(
            check=_CHECK_SQL.replace("?", mark),
            insert=_INSERT_SQL.replace("?", mark).format(json=json_mark),
            timestamp=convert or (lambda value: value),
        )


def store_event(engine: Engine, event: dict[str, Any]) -> tuple[str, int | None]:
    """Store the event unless its twin is stored, its owner is not ours or its subscription is.

    The subscription is read each time, so a new one takes effect without a restart.
    Returns an outcome ("stored", "duplicate", "wrong subscription", "unknown athlete") and
    the new row's id when stored. On an engine without a ping (PostgreSQL's intake), a
    connection the server dropped is replaced and the statement tried once more: it is
    idempotent through the dedupe key.
    """
    try:
        return _store(engine, event)
    except DBAPIError as e:
        if not e.connection_invalidated:
            raise
        return _store(engine, event)


def _store(engine: Engine, event: dict[str, Any]) -> tuple[str, int | None]:
    """One attempt of store_event, on one pooled connection."""
    sql = _Intake.for_dialect(engine.dialect)
    now = sql.timestamp(utcnow())
    values = (
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
    conn = engine.raw_connection()
    cur = None  # for the disconnect check, should the cursor itself fail to open
    try:
        cur = conn.cursor()
        cur.execute(sql.insert, values)
        row: tuple[int] | None = cur.fetchone()
        if row is None:
            cur.execute(sql.check, (event["owner_id"],))
            subscription_id, known = cur.fetchone() or (None, False)
        conn.commit()
    except engine.dialect.loaded_dbapi.Error as e:
        # The pool must not hand out a connection the server has closed: say so, and drop it.
        disconnect = engine.dialect.is_disconnect(e, conn.dbapi_connection, cur)
        if disconnect:
            conn.invalidate(e)
        else:
            conn.rollback()
        raise DBAPIError.instance(
            sql.insert, values, e, engine.dialect.loaded_dbapi.Error,
            connection_invalidated=disconnect, dialect=engine.dialect,
        ) from e  # fmt: skip
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()  # back to the pool
    if row is not None:
        return "stored", int(row[0])
    if subscription_id is not None and event["subscription_id"] != subscription_id:
        return "wrong subscription", None
    if not known:
        return "unknown athlete", None
    return "duplicate", None


@bp.errorhandler(HTTPException)
def http_error(e: HTTPException) -> tuple[Response, int]:
    """Webhook errors are short JSON, never an HTML page."""
    return _reason(e.code or 400, e.name.lower())
