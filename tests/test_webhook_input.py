"""The webhook edge against bad input: 4xx or the one 200 answer, never a 5xx, nothing stored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from sqlalchemy import event, text

from .conftest import VERIFY_TOKEN, Stack

JSON_HEADERS = {"Content-Type": "application/json"}
RECEIVED = {"status": "received"}


def _good(stack: Stack, owner: int, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "aspect_type": "create",
        "event_time": int(time.time()),
        "object_id": 424242,
        "object_type": "activity",
        "owner_id": owner,
        "subscription_id": stack.sim.subscription["id"],  # type: ignore[index]
        "updates": {},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


CASES = [
    ("malformed json", b"{not json", JSON_HEADERS, 400),
    ("empty body", b"", JSON_HEADERS, 400),
    ("json array", b"[1, 2, 3]", JSON_HEADERS, 400),
    ("json string", b'"hello"', JSON_HEADERS, 400),
    ("invalid utf-8", b'{"object_type": "\xff\xfe"}', JSON_HEADERS, 400),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, JSON_HEADERS, 413),
    ("deep nesting under the size limit", b"[" * 30_000 + b"]" * 30_000, JSON_HEADERS, 400),
    ("huge body", b'{"pad": "' + b"x" * 70_000 + b'"}', JSON_HEADERS, 413),
    ("text/plain", b"{}", {"Content-Type": "text/plain"}, 415),
    ("form encoded", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ("no content type", b"{}", {}, 415),
]


@pytest.mark.parametrize(
    ("body", "headers", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_bodies(stack: Stack, body: bytes, headers: dict[str, str], status: int) -> None:
    r = stack.sim.post_raw(body, headers)
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith("application/json")
    assert "error" in r.json()
    assert _stored(stack) == 0


FIELD_CASES = [
    ("missing object_id", {"object_id": ...}, 400),
    ("missing owner_id", {"owner_id": ...}, 400),
    ("missing aspect_type", {"aspect_type": ...}, 400),
    ("missing event_time", {"event_time": ...}, 400),
    ("missing subscription_id", {"subscription_id": ...}, 400),
    ("string object_id", {"object_id": "424242"}, 400),
    ("float object_id", {"object_id": 4.5}, 400),
    ("boolean owner_id", {"owner_id": True}, 400),
    ("negative object_id", {"object_id": -1}, 400),
    ("enormous object_id", {"object_id": 2**70}, 400),
    ("unknown object_type", {"object_type": "club"}, 400),
    ("unknown aspect_type", {"aspect_type": "explode"}, 400),
    ("null aspect_type", {"aspect_type": None}, 400),
    ("updates is a list", {"updates": ["title"]}, 400),
    ("updates holds an object", {"updates": {"title": {"x": 1}}}, 400),
]


@pytest.mark.parametrize(
    ("changes", "status"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES]
)
def test_bad_fields(stack: Stack, changes: dict[str, object], status: int) -> None:
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    body = json.dumps(_good(stack, athlete["id"], **changes)).encode()
    r = stack.sim.post_raw(body, JSON_HEADERS)
    assert r.status_code == status, r.text
    assert _stored(stack) == 0


def test_unknown_owner_gets_the_one_answer_and_nothing_is_stored(stack: Stack) -> None:
    """An event for a runner the service does not know is answered like any other."""
    r = _post(stack, 5555)
    assert (r.status_code, r.json()) == (200, RECEIVED)
    assert _stored(stack) == 0


def test_a_good_event_is_stored(stack: Stack) -> None:
    """A well-formed event of a connected runner is stored once and answered "received"."""
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    r = _post(stack, athlete["id"])
    assert (r.status_code, r.json()) == (200, RECEIVED)
    assert _stored(stack) == 1


def test_a_retry_and_a_foreign_subscription_get_the_same_answer(stack: Stack) -> None:
    """A retry stores nothing more; another subscription's event stores nothing; same answer."""
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    body = json.dumps(_good(stack, athlete["id"])).encode()
    answers = [stack.sim.post_raw(body, JSON_HEADERS) for _ in range(2)]
    assert [(r.status_code, r.json()) for r in answers] == [(200, RECEIVED)] * 2
    r = _post(stack, athlete["id"], object_id=5151, subscription_id=999_999)
    assert (r.status_code, r.json()) == (200, RECEIVED)
    assert _stored(stack) == 1


WRONG_PATHS = [
    "/webhooks/strava",
    "/webhooks/strava/",
    "/webhooks/strava/not-the-secret",
    "/webhooks/strava/{secret}x",
    "/webhooks/strava/{secret}/more",
    "/webhooks/{secret}",
    "/webhooks/other/{secret}",
]


@pytest.mark.parametrize("path", WRONG_PATHS)
def test_a_post_to_any_other_path_is_404_and_touches_no_database(
    make_stack: Callable[..., Stack], path: str
) -> None:
    """Wrong path: 404, nothing stored, not one SQL statement run."""
    stack = make_stack()  # no worker: any statement in the block is the request's
    stack.subscribe()
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    url = stack.url + path.format(secret=stack.app.config["WEBHOOK_SECRET"])
    body = _good(stack, athlete["id"])
    with _statements(stack) as seen:
        r = requests.post(url, json=body, timeout=10)
        handshake = requests.get(url, params=_handshake(VERIFY_TOKEN), timeout=10)
    assert r.status_code == 404 and handshake.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    assert seen == []
    assert _stored(stack) == 0


def test_the_handshake_needs_the_secret_path_and_the_token(stack: Stack) -> None:
    """The handshake answers at the secret path only, and only with the verify token."""
    url = stack.url + "/webhooks/strava/" + stack.app.config["WEBHOOK_SECRET"]
    good = requests.get(url, params=_handshake(VERIFY_TOKEN), timeout=10)
    assert (good.status_code, good.json()) == (200, {"hub.challenge": "c1"})
    wrong_token = requests.get(url, params=_handshake("nope"), timeout=10)
    assert wrong_token.status_code == 403 and "c1" not in wrong_token.text


def test_the_secret_is_derived_from_secret_key_unless_set(make_stack: Callable[..., Stack]) -> None:
    """Unset, the secret is an HMAC of SECRET_KEY (64 hex); set, it is WEBHOOK_SECRET."""
    derived = make_stack(SECRET_KEY="k1").app.config["WEBHOOK_SECRET"]
    assert len(derived) == 64 and int(derived, 16) >= 0
    assert derived == make_stack(SECRET_KEY="k1").app.config["WEBHOOK_SECRET"]
    assert derived != make_stack(SECRET_KEY="k2").app.config["WEBHOOK_SECRET"]
    own = "my-own-secret-segment-0123"
    stack = make_stack(WEBHOOK_SECRET=own)
    stack.subscribe()
    assert stack.sim.subscription is not None
    assert stack.sim.subscription["callback_url"] == f"{stack.url}/webhooks/strava/{own}"


def test_the_intake_replaces_a_connection_the_server_dropped(stack: Stack) -> None:
    """A pooled connection PostgreSQL dropped is replaced before use: a 200, not a 503."""
    if stack.db.dialect != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    athlete = _one_event_accepted(stack)
    with stack.db.engine.connect(), stack.db.engine.connect():
        pass  # two connections left in the pool: the one the drop below runs on, and another
    assert stack.drop_server_connections()  # at least that other pooled connection
    r = _post(stack, athlete["id"], object_id=434343)
    assert (r.status_code, r.json()) == (200, RECEIVED)
    assert _stored(stack) == 2


def test_the_intake_queues_past_a_redis_connection_that_was_dropped(
    make_stack: Callable[..., Stack], caplog: pytest.LogCaptureFixture
) -> None:
    """The intake's own Redis connections: one the server closed is replaced at once."""
    stack = make_stack()  # no worker: what is queued stays in the queue
    if not stack.app.config["QUEUE_URL"].startswith("redis"):
        pytest.skip("the SQLite queue has no connection to drop")
    import redis

    stack.subscribe()
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    tasks = stack.app.extensions["tasks"]
    before = tasks.depth()
    first = _post(stack, athlete["id"])
    assert first.json() == RECEIVED and tasks.depth() == before + 1
    admin = redis.Redis.from_url(stack.app.config["QUEUE_URL"])
    try:
        # Every client but this one: the intake's idle connection among them.
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    finally:
        admin.close()
    r = _post(stack, athlete["id"], object_id=434343)
    assert (r.status_code, r.json()) == (200, RECEIVED)
    assert tasks.depth() == before + 2  # queued now, not left to the sweep
    assert "not enqueued" not in caplog.text


def test_storage_down_is_a_503_strava_will_retry(
    make_stack: Callable[..., Stack], caplog: pytest.LogCaptureFixture
) -> None:
    """A database error is an answer Strava retries, with the reason, never a bare 500."""
    stack = make_stack()
    stack.subscribe()
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    with stack.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE events RENAME TO events_away"))
    try:
        r = _post(stack, athlete["id"])
    finally:
        with stack.db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE events_away RENAME TO events"))
    assert r.status_code == 503 and r.json() == {"error": "storage unavailable, retry later"}
    assert "could not store webhook event" in caplog.text
    retried = _post(stack, athlete["id"])
    assert retried.json() == RECEIVED and _stored(stack) == 1


def test_other_methods_are_not_a_server_error(stack: Stack) -> None:
    """Other methods at the secret path are 405; at the old path, 404."""
    secret_url = stack.sim.subscription["callback_url"]  # type: ignore[index]
    for method in ("PUT", "DELETE", "PATCH"):
        assert requests.request(method, secret_url, timeout=10).status_code == 405
        assert (
            requests.request(method, stack.url + "/webhooks/strava", timeout=10).status_code == 404
        )


def _post(stack: Stack, owner: int, **changes: object) -> requests.Response:
    """POST a good event of `owner`'s (with `changes`), as Strava would."""
    return stack.sim.post_raw(json.dumps(_good(stack, owner, **changes)).encode(), JSON_HEADERS)


def _one_event_accepted(stack: Stack) -> dict[str, Any]:
    """A connected runner whose first event the intake accepted."""
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    assert _post(stack, athlete["id"]).json() == RECEIVED
    assert _stored(stack) == 1
    return athlete


def _handshake(token: str) -> dict[str, str]:
    """Strava's subscription check, with `token` as the verify token."""
    return {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "c1"}


@contextmanager
def _statements(stack: Stack) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(stack.db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(stack.db.engine, "before_cursor_execute", record)


def _stored(stack: Stack) -> int:
    """Webhook events stored (the history import the connect queued is not one)."""
    return len(stack.events())
