"""Property: the webhook intake answers any body and headers below 500 and stores only events.

Every well-formed event at the secret path gets one answer, stored or not; any other path is
a 404 that stores nothing.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from strava_massage.models import Event
from webhooks import dedupe_key, parse_event

from .conftest import Stack

# One stack per test and backend serves every example: building one per example would cost
# a migration each time, and the examples share nothing but the row count taken around each.
PROPERTY_SETTINGS = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    max_examples=150,
    deadline=None,
)

JSON_TYPES = ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"]
OTHER_TYPES = [
    "text/plain",
    "text/json",
    "application/jsonp",
    "application/vnd.api+json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
]
# Framing headers are the HTTP client's business: a random Content-Length or Expect would
# test http.client and werkzeug's request reader, not the intake.
FRAMING = {
    "content-length",
    "content-type",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "expect",
    "te",
    "trailer",
    "upgrade",
}
LIKELY_HEADERS = [
    "Cookie",
    "Authorization",
    "Accept",
    "Accept-Charset",
    "Content-Encoding",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Hub-Signature",
    "User-Agent",
    "Origin",
]
REQUIRED = ("object_type", "aspect_type", "object_id", "owner_id", "subscription_id", "event_time")
KNOWN_KEYS = {*REQUIRED, "updates"}
INT_MINIMUM = {"object_id": 1, "owner_id": 1, "subscription_id": 0, "event_time": 0}
INT_MAXIMUM = 2**63 - 1
OWNER = 4242
SUBSCRIPTION = 1  # the first id a fresh simulator hands out
ENUMS = {"object_type": ("activity", "athlete"), "aspect_type": ("create", "update", "delete")}
RECEIVED = {"status": "received"}

# http.client sends header values as latin-1 and refuses line breaks; anything else goes.
header_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40
).map(str.strip)
header_name = st.one_of(
    st.sampled_from(LIKELY_HEADERS),
    st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=20),
).filter(lambda name: name.lower() not in FRAMING)
extra_headers = st.dictionaries(header_name, header_value, max_size=4)
content_type = st.one_of(
    st.none(),
    st.sampled_from(JSON_TYPES + OTHER_TYPES),
    header_value,
    header_value.map(lambda params: f"application/json;{params}"),
)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),
    st.text(max_size=30),
    # Lone surrogates: json.loads turns an escaped one into a str that cannot be UTF-8.
    st.sampled_from(["\ud800", "a\udfffb"]),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


def ascii_json(value: Any) -> bytes:
    """JSON as Strava sends it: ASCII, non-ASCII escaped."""
    return json.dumps(value).encode()


# json.loads reads UTF-16 and lets surrogates through, so the intake must cope with both.
def utf8_json(value: Any) -> bytes:
    """Raw UTF-8, lone surrogates passed through as their (invalid) UTF-8 bytes."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def utf16_json(value: Any) -> bytes:
    """UTF-16 with a byte-order mark."""
    return json.dumps(value, ensure_ascii=False).encode("utf-16", "surrogatepass")


def indented_json(value: Any) -> bytes:
    """Pretty-printed, with newlines between members."""
    return json.dumps(value, indent=1).encode()


ENCODERS = [ascii_json, utf8_json, utf16_json, indented_json]
json_body = st.builds(lambda value, encode: encode(value), json_value, st.sampled_from(ENCODERS))


def _headers(ctype: str | None, extra: dict[str, str]) -> dict[str, str]:
    """Extra headers, then the Content-Type (absent when None)."""
    headers = dict(extra)
    if ctype is not None:
        headers["Content-Type"] = ctype
    return headers


def _post(
    stack: Stack, body: bytes, headers: dict[str, str], path: str | None = None
) -> requests.Response:
    """POST straight to the service's intake (or to another path under the service)."""
    # A fresh connection per example: a body the server chose not to read (415) cannot spill
    # into the next request and make a harness problem look like an intake one.
    url = stack.url + path if path is not None else _callback(stack)
    return requests.post(url, data=body, headers=headers, timeout=10)


def _callback(stack: Stack) -> str:
    """The registered callback URL, secret included."""
    subscription = stack.sim.subscription
    assert subscription is not None
    return str(subscription["callback_url"])


def _has_key(stack: Stack, key: str) -> bool:
    """Whether an event with this dedupe key is stored."""
    with stack.db.session() as session:
        return session.scalar(select(Event.id).where(Event.dedupe_key == key)) is not None


def _rows(stack: Stack) -> int:
    """Every stored event row, history imports included."""
    with stack.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def _latest(stack: Stack) -> Event:
    """The newest stored event."""
    with stack.db.session() as session:
        return session.scalars(select(Event).order_by(Event.id.desc()).limit(1)).one()


def _answer(r: requests.Response) -> tuple[int, dict[str, Any]]:
    """The status and JSON answer; every answer, errors included, is a small JSON object."""
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, dict) and ("error" in body or "status" in body), body
    return r.status_code, body


@pytest.fixture
def intake(make_stack: Callable[..., Stack]) -> Stack:
    """A subscribed service with one connected runner (OWNER), and no worker."""
    # The runner makes storing possible, so "nothing stored" means something; without a
    # worker nothing but the intake writes event rows while the examples run.
    stack = make_stack()
    stack.subscribe()
    # Fixed ids, so the strategies (and the explicit examples) can name them up front.
    subscription = stack.sim.subscription
    assert subscription is not None and subscription["id"] == SUBSCRIPTION
    stack.sim.create_athlete(athlete_id=OWNER)
    stack.connect(OWNER)
    return stack


# JSON arrays and objects where the intake expects a string are the near misses most
# likely to trip a set lookup or a hash, so they are always tried, not left to chance.
@PROPERTY_SETTINGS
@example(body=b'{"object_type": []}', ctype="application/json", extra={})
@example(body=b'{"object_type": "activity", "aspect_type": {}}', ctype="application/json", extra={})
@given(
    body=st.one_of(st.binary(max_size=2048), json_body),
    ctype=content_type,
    extra=extra_headers,
)
def test_arbitrary_bodies_and_headers_never_5xx_and_store_nothing(
    intake: Stack, body: bytes, ctype: str | None, extra: dict[str, str]
) -> None:
    """Random bytes or JSON under any Content-Type: a 4xx or a harmless 200, no new row."""
    stack = intake
    before = _rows(stack)
    code, answer = _answer(_post(stack, body, _headers(ctype, extra)))
    event(f"answered {code}")
    # Random data cannot name the subscription, the runner and valid fields all at once.
    assert _rows(stack) == before, (body, answer)


@PROPERTY_SETTINGS
@example(path="/webhooks/strava")
@example(path="/webhooks/strava/")
@given(
    path=st.one_of(
        st.text(
            alphabet=st.characters(
                min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="?#"
            ),
            max_size=80,
        ).map(lambda tail: "/webhooks/strava/" + tail),
        st.text(alphabet=string.ascii_letters + string.digits + "-_./", max_size=60).map(
            lambda tail: "/webhooks/" + tail
        ),
    )
)
def test_a_good_event_at_any_other_path_is_404_and_stores_nothing(intake: Stack, path: str) -> None:
    """Only the secret path takes events: a valid event anywhere else under /webhooks is 404."""
    stack = intake
    secret = stack.app.config["WEBHOOK_SECRET"]
    if path.rstrip("/") == "/webhooks/strava/" + secret:
        return  # hypothesis cannot guess 64 hex digits, but the check costs nothing
    before = _rows(stack)
    r = _post(
        stack, json.dumps(_valid(object_id=91)).encode(), {"Content-Type": JSON_TYPES[0]}, path
    )
    event(f"answered {r.status_code}")
    assert r.status_code in (404, 405), (path, r.status_code)  # 405: a path of the pages
    assert _rows(stack) == before


@dataclass
class Case:
    """A nearly valid event and what the intake must make of it."""

    body: dict[str, Any]
    broken: list[str]  # mutations that make it no Strava event at all (400)
    foreign_subscription: bool  # well formed, for another subscription (200, not stored)
    foreign_owner: bool  # well formed, for a runner we do not know (200, not stored)


def _wrong_type() -> st.SearchStrategy[Any]:
    """Anything JSON can carry that is not an integer (booleans and 3.0 included)."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.floats(),
        st.text(max_size=12),
        st.integers().map(str),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    )


def _bad_updates() -> st.SearchStrategy[Any]:
    """An `updates` that is not a small object of short-keyed simple values."""
    simple = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.floats())
    nested = st.one_of(st.none(), st.lists(simple, max_size=2), st.dictionaries(st.text(), simple))
    return st.one_of(
        st.booleans(),
        st.integers(),
        st.text(max_size=10),
        st.lists(simple, max_size=3),
        st.dictionaries(st.text(max_size=50), simple, min_size=21, max_size=25),
        st.dictionaries(st.text(max_size=10), nested, min_size=1, max_size=3),
        st.dictionaries(st.text(min_size=51, max_size=60), simple, min_size=1, max_size=2),
    )


def _good_updates() -> st.SearchStrategy[Any]:
    """What Strava may send in `updates`, null included."""
    simple = st.one_of(
        st.text(max_size=250), st.integers(-(2**70), 2**70), st.booleans(), st.floats()
    )
    return st.one_of(st.none(), st.dictionaries(st.text(max_size=50), simple, max_size=20))


def _break(draw: st.DrawFn, body: dict[str, Any], field: str) -> str:
    """Change one field so the body is no Strava event any more; says how."""
    if field == "updates":
        body["updates"] = draw(_bad_updates())
        return "updates: not a small object of simple values"
    kind = draw(
        st.sampled_from(
            ["drop", "wrong type", "out of range" if field in INT_MINIMUM else "bad enum"]
        )
    )
    if kind == "drop":
        del body[field]
    elif kind == "wrong type":
        body[field] = draw(_wrong_type())
    elif kind == "out of range":
        low = st.integers(max_value=INT_MINIMUM[field] - 1)
        body[field] = draw(low | st.integers(min_value=INT_MAXIMUM + 1))
    else:
        valid = ENUMS[field]
        near_miss = st.sampled_from([v.upper() for v in valid] + [f" {valid[0]}", "club", ""])
        anything = st.text(max_size=10) | json_scalar
        body[field] = draw(near_miss | anything.filter(lambda v: v not in valid))
    return f"{field}: {kind}"


@st.composite
def near_events(draw: st.DrawFn, owner: int, subscription: int) -> Case:
    """A valid event for our runner, then changed in known ways towards a drawn outcome."""
    body: dict[str, Any] = {
        "object_type": draw(st.sampled_from(ENUMS["object_type"])),
        "aspect_type": draw(st.sampled_from(ENUMS["aspect_type"])),
        "object_id": draw(st.integers(1, INT_MAXIMUM)),
        "owner_id": owner,
        "subscription_id": subscription,
        "event_time": draw(st.integers(0, INT_MAXIMUM)),
    }
    if draw(st.booleans()):
        body["updates"] = draw(_good_updates())
    case = Case(body, [], False, False)
    # The outcome is chosen first, so each kind (broken, foreign, ours) gets its share.
    intent = draw(st.sampled_from(["valid", "foreign owner", "foreign subscription", "broken"]))
    if intent == "foreign subscription" or (intent == "broken" and draw(st.booleans())):
        body["subscription_id"] = draw(
            st.integers(0, INT_MAXIMUM).filter(lambda n: n != subscription)
        )
        case.foreign_subscription = True
    if intent == "foreign owner" or (intent != "valid" and draw(st.booleans())):
        body["owner_id"] = draw(st.integers(1, INT_MAXIMUM).filter(lambda n: n != owner))
        case.foreign_owner = True
    if intent == "valid" and draw(st.booleans()):
        body.pop("updates", None)  # absent is as good as empty
    if intent == "broken":
        # Distinct fields, so one change never undoes another and each one alone is fatal.
        fields = draw(
            st.lists(st.sampled_from(sorted(KNOWN_KEYS)), min_size=1, max_size=3, unique=True)
        )
        for field in fields:
            case.broken.append(_break(draw, body, field))
    # Keys Strava does not send are ignored, whatever they hold.
    body.update(
        draw(
            st.dictionaries(st.text(max_size=15).filter(lambda k: k not in KNOWN_KEYS), json_value)
        )
    )
    return case


def _valid(**changes: Any) -> dict[str, Any]:
    """A valid event for OWNER with some fields replaced."""
    body = {
        "object_type": "activity",
        "aspect_type": "create",
        "object_id": 77,
        "owner_id": OWNER,
        "subscription_id": SUBSCRIPTION,
        "event_time": 1_700_000_000,
    }
    return body | changes


@PROPERTY_SETTINGS
@example(
    case=Case(_valid(object_type=[]), ["object_type: wrong type"], False, False),
    encode=ascii_json,
    ctype="application/json",
    extra={},
)
@example(
    case=Case(_valid(aspect_type={"a": 1}), ["aspect_type: wrong type"], False, False),
    encode=ascii_json,
    ctype="application/json",
    extra={},
)
@given(
    case=near_events(OWNER, SUBSCRIPTION),
    encode=st.sampled_from(ENCODERS),
    ctype=st.sampled_from(JSON_TYPES) | st.sampled_from([None, *OTHER_TYPES]),
    extra=extra_headers,
)
def test_nearly_valid_events_are_refused_or_ignored_unless_valid(
    intake: Stack,
    case: Case,
    encode: Callable[[Any], bytes],
    ctype: str | None,
    extra: dict[str, str],
) -> None:
    """Near misses get 415 or 400 as built; anything well formed the one 200, a row only if ours."""
    stack = intake
    wire = encode(case.body)
    ours = not (case.broken or case.foreign_subscription or case.foreign_owner)
    key = dedupe_key(parse_event(wire)) if ours and ctype in JSON_TYPES else None
    stored_before = key is not None and _has_key(stack, key)
    before = _rows(stack)
    code, answer = _answer(_post(stack, wire, _headers(ctype, extra)))
    gained = _rows(stack) - before
    event(f"answered {code} {answer.get('status', '')}".strip())  # --hypothesis-show-statistics

    if ctype not in JSON_TYPES:
        assert code == 415 and gained == 0, answer
    elif case.broken:
        assert code == 400 and gained == 0, (case.broken, answer)
    elif not ours:
        # Another subscription's or an unknown runner's: answered exactly like ours.
        assert (code, answer, gained) == (200, RECEIVED, 0), answer
    else:
        assert (code, answer) == (200, RECEIVED), answer
        assert key is not None and _has_key(stack, key)
        assert gained == (0 if stored_before else 1)  # a retry of a stored event adds nothing
        if not stored_before:
            stored = _latest(stack)
            sent = case.body
            assert (stored.object_type, stored.aspect_type, stored.status) == (
                sent["object_type"],
                sent["aspect_type"],
                "pending",
            )
            assert (stored.object_id, stored.owner_id, stored.event_time) == (
                sent["object_id"],
                sent["owner_id"],
                sent["event_time"],
            )
