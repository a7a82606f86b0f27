"""The webhook edge: check, store, enqueue, answer. The work itself happens in the worker.

Strava's events are not signed, so the callback URL carries a secret path segment, and every
event is a hint the worker checks with Strava before it changes anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from sqlalchemy import bindparam, exists, insert, or_, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from strava_massage.config import ConfigError
from strava_massage.logfmt import life_line
from strava_massage.models import Athlete, Event, Subscription, table_of, utcnow

if TYPE_CHECKING:
    from strava_massage.db import Database
    from strava_massage.worker.queue import Tasks

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
OBJECT_TYPES = frozenset({"activity", "athlete"})
ASPECT_TYPES = frozenset({"create", "update", "delete"})
# The label the default secret is derived under, so it is no other use of SECRET_KEY.
SECRET_LABEL = b"legwork webhook callback path v1"
# A secret of one's own must be a plain path segment, and long enough not to be guessed.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,200}")
# One answer for every well-formed event at the right path: stored, a retry, not ours.
RECEIVED = {"status": "received"}


class BadEvent(ValueError):
    """The body is not a Strava event; the message is the short reason sent back."""


def init_app(app: Flask) -> None:
    """Settle the callback's secret path segment once: WEBHOOK_SECRET, else derived."""
    given = app.config.get("WEBHOOK_SECRET")
    if given and not SECRET_PATTERN.fullmatch(str(given)):
        raise ConfigError(
            "WEBHOOK_SECRET must be at least 16 characters of A-Z a-z 0-9 . _ ~ -"
            " (or unset, to derive it from SECRET_KEY)"
        )
    app.config["WEBHOOK_SECRET"] = str(given) if given else derive_secret(app.config["SECRET_KEY"])


def derive_secret(secret_key: str | bytes) -> str:
    """The default path secret: HMAC-SHA256 of SECRET_KEY under a fixed label, in hex."""
    key = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return hmac.new(key, SECRET_LABEL, hashlib.sha256).hexdigest()


def _require_secret(secret: str) -> None:
    """404, as for any unknown path, unless the path carries the callback's secret."""
    expected = current_app.config["WEBHOOK_SECRET"].encode()
    if not hmac.compare_digest(secret.encode("utf-8", "replace"), expected):
        abort(404)


def _error(status: int, reason: str) -> tuple[Response, int]:
    """A short JSON error answer."""
    return jsonify(error=reason), status


@bp.get("/strava/<secret>")
def handshake(secret: str) -> tuple[Response, int]:
    """Answer Strava's subscription check by echoing the challenge if the token matches."""
    _require_secret(secret)
    mode = request.args.get("hub.mode")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge")
    if mode != "subscribe" or challenge is None:
        return _error(400, "expected hub.mode=subscribe with a hub.challenge")
    expected = current_app.config["STRAVA_VERIFY_TOKEN"]
    if not hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode()):
        return _error(403, "verify token does not match")
    return jsonify({"hub.challenge": challenge}), 200


@bp.post("/strava/<secret>")
def receive(secret: str) -> tuple[Response, int]:
    """Validate an event, store it once if it is ours, queue it; answer within Strava's 2 s.

    Known or unknown runner, right or wrong subscription, first delivery or retry: the same
    answer, so the intake tells a caller nothing about who is connected here.
    """
    _require_secret(secret)
    if request.mimetype != "application/json":
        return _error(415, "content type must be application/json")
    request.max_content_length = MAX_BODY_BYTES
    try:
        event = parse_event(request.get_data(cache=False))
    except RequestEntityTooLarge:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    except BadEvent as e:
        return _error(400, str(e))
    db: Database = current_app.extensions["db"]
    try:
        event_id = store_event(db, event)
    except SQLAlchemyError:
        log.exception("could not store webhook event")
        # Strava retries a non-200, so the event is not lost.
        return _error(503, "storage unavailable, retry later")
    if event_id is not None:
        _enqueue(current_app.extensions["tasks"], event_id)
        # DEBUG, not INFO: the worker logs every event's outcome already.
        if log.isEnabledFor(logging.DEBUG):
            object_ref = f"{event['object_type']}:{event['object_id']}"
            log.debug(life_line("received", event_id, event["owner_id"], object=object_ref))
    return jsonify(RECEIVED), 200


def _enqueue(tasks: Tasks, event_id: int) -> None:
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


_EVENTS = table_of(Event)
_ATHLETES = table_of(Athlete)
_SUBSCRIPTIONS = table_of(Subscription)
_STORED_COLUMNS = (
    "dedupe_key", "object_type", "object_id", "aspect_type", "owner_id", "updates",
    "event_time", "status", "attempts", "received_at", "due_at",
)  # fmt: skip


def _insert_statement() -> Any:
    """INSERT ... SELECT the event WHERE its owner is ours and it names our subscription.

    Before a subscription is stored, any subscription id is accepted (the handshake comes
    first). The subscription is read by the statement itself, so a new one takes effect
    without a restart. A twin already stored makes it fail on the unique dedupe key.
    """
    row = select(*(bindparam(name, type_=_EVENTS.c[name].type) for name in _STORED_COLUMNS))
    ours = row.where(
        exists().where(_ATHLETES.c.id == bindparam("owner")),
        or_(
            ~exists().select_from(_SUBSCRIPTIONS),
            exists().where(_SUBSCRIPTIONS.c.id == bindparam("subscription")),
        ),
    )
    return insert(_EVENTS).from_select(list(_STORED_COLUMNS), ours).returning(_EVENTS.c.id)


# Built once: the statement is the same for every event, only its parameters change.
_INSERT = _insert_statement()
_LOCK_OWNER = (
    select(_ATHLETES.c.id)
    .where(_ATHLETES.c.id == bindparam("owner"))
    .with_for_update(key_share=True)
)


def _parameters(event: dict[str, Any]) -> dict[str, Any]:
    """The insert's parameters for one event."""
    now = utcnow()
    return {
        "dedupe_key": dedupe_key(event),
        "object_type": event["object_type"],
        "object_id": event["object_id"],
        "aspect_type": event["aspect_type"],
        "owner_id": event["owner_id"],
        "updates": event["updates"],
        "event_time": event["event_time"],
        "status": "pending",
        "attempts": 0,
        "received_at": now,
        "due_at": now,
        "owner": event["owner_id"],
        "subscription": event["subscription_id"],
    }


def store_event(db: Database, event: dict[str, Any]) -> int | None:
    """Store the event if it is ours and new, in one statement; the new row's id, else None.

    None for an event of an unknown runner, of another subscription, or already stored: the
    caller answers all of them alike. The engine's pool pings a connection before handing it
    out, so one the server dropped is replaced before the statement runs.
    """
    try:
        with db.engine.begin() as conn:
            # The runner's row first, as deleting a runner locks it: an event arriving in the
            # instant they leave is then either refused or deleted with them, never left over.
            conn.execute(_LOCK_OWNER, {"owner": event["owner_id"]})
            stored: int | None = conn.scalar(_INSERT, _parameters(event))
            return stored
    except IntegrityError:
        return None  # a retry of an event stored before: its task is queued already


@bp.errorhandler(HTTPException)
def http_error(e: HTTPException) -> tuple[Response, int]:
    """Webhook errors are short JSON, never an HTML page."""
    return _error(e.code or 400, e.name.lower())
