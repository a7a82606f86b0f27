"""The webhook edge against bad input: 4xx or a harmless 200, never a 5xx, nothing stored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from sqlalchemy import text

from .conftest import Stack

JSON_HEADERS = {"Content-Type": "application/json"}


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
    ("wrong subscription", {"subscription_id": 999_999}, 403),
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


def test_unknown_owner_gets_a_harmless_200(stack: Stack) -> None:
    r = _post(stack, 5555)
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    assert _stored(stack) == 0


def test_a_good_event_is_stored(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    r = _post(stack, athlete["id"])
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert _stored(stack) == 1


def test_a_retry_is_a_duplicate_and_a_foreign_subscription_is_refused(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    body = json.dumps(_good(stack, athlete["id"])).encode()
    answers = [stack.sim.post_raw(body, JSON_HEADERS).json()["status"] for _ in range(2)]
    assert answers == ["accepted", "duplicate"]
    r = _post(stack, athlete["id"], object_id=5151, subscription_id=999_999)
    assert r.status_code == 403 and r.json()["error"] == "unknown subscription"
    assert _stored(stack) == 1


def test_the_intake_replaces_a_connection_the_server_dropped(stack: Stack) -> None:
    """PostgreSQL's intake skips the pool's ping: a dropped connection costs a retry, not a 503."""
    if stack.db.dialect != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    athlete = _one_event_accepted(stack)
    ended = stack.drop_server_connections()
    assert ended  # at least the intake's pooled connection
    r = _post(stack, athlete["id"], object_id=434343)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert _stored(stack) == 2


def test_the_intake_prepares_again_after_its_statements_were_discarded(stack: Stack) -> None:
    """A pooler's DISCARD ALL drops the intake's prepared statements: it prepares them again."""
    if stack.db.dialect != "postgresql":
        pytest.skip("SQLite's intake prepares nothing on a server")
    athlete = _one_event_accepted(stack)
    pooled = stack.db.intake.raw_connection()  # the connection that request used, now idle
    try:
        pooled.dbapi_connection.execute("DEALLOCATE ALL")
    finally:
        pooled.close()
    r = _post(stack, athlete["id"], object_id=434343)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
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
    assert first.json()["status"] == "accepted" and tasks.depth() == before + 1
    admin = redis.Redis.from_url(stack.app.config["QUEUE_URL"])
    try:
        # Every client but this one: the intake's idle connection among them.
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    finally:
        admin.close()
    r = _post(stack, athlete["id"], object_id=434343)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
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
    assert retried.json()["status"] == "accepted" and _stored(stack) == 1


def test_other_methods_are_not_a_server_error(stack: Stack) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        r = requests.request(method, stack.url + "/webhooks/strava")
        assert r.status_code == 405


def _post(stack: Stack, owner: int, **changes: object) -> requests.Response:
    """POST a good event of `owner`'s (with `changes`), as Strava would."""
    return stack.sim.post_raw(json.dumps(_good(stack, owner, **changes)).encode(), JSON_HEADERS)


def _one_event_accepted(stack: Stack) -> dict[str, Any]:
    """A connected runner whose first event the intake accepted."""
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    assert _post(stack, athlete["id"]).json()["status"] == "accepted"
    return athlete


def _stored(stack: Stack) -> int:
    """Webhook events stored (the history import the connect queued is not one)."""
    return len(stack.events())
