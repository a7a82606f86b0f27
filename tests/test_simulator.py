"""The Strava simulator, exercised over real HTTP with requests and stravalib."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask, request
from requests.adapters import HTTPAdapter
from werkzeug.serving import make_server

from strava_massage.simulator import NoSubscriptionError, Simulator

REDIRECT = "http://localhost:9999/strava/callback"
ALL = "read,activity:read_all,activity:write"


class Callback:
    """A tiny webhook receiver: echoes the handshake (or not) and records events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.echo = True
        self.status = 200
        app = Flask("callback")

        @app.get("/webhook")
        def handshake() -> dict[str, str]:
            challenge = request.args["hub.challenge"] if self.echo else "wrong"
            return {"hub.challenge": challenge}

        @app.post("/webhook")
        def event() -> tuple[str, int]:
            self.events.append(request.get_json(force=True, silent=True) or {})
            return "", self.status

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhook"
        serve = self.server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Events received once there are `count` of them (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.events


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as running:
        yield running


@pytest.fixture
def callback() -> Iterator[Callback]:
    receiver = Callback()
    yield receiver
    receiver.server.shutdown()


def subscribe(sim: Simulator, callback: Callback) -> requests.Response:
    form = {"client_id": sim.client_id, "client_secret": sim.client_secret}
    form |= {"callback_url": callback.url, "verify_token": "vt"}
    return requests.post(f"{sim.url}/api/v3/push_subscriptions", data=form, timeout=5)


def consent(
    sim: Simulator, athlete_id: int | str, scope: str = ALL, **extra: Any
) -> dict[str, Any]:
    """Submit the approval form; returns the redirect's query parameters."""
    form = {"client_id": sim.client_id, "redirect_uri": REDIRECT, "state": "xyz", "scope": scope}
    form |= {"athlete_id": athlete_id, "granted": scope.split(","), "decision": "authorize"}
    answer = requests.post(
        f"{sim.url}/oauth/authorize", data=form | extra, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(sim: Simulator, code: str) -> requests.Response:
    form = {"client_id": sim.client_id, "client_secret": sim.client_secret, "code": code}
    return requests.post(
        f"{sim.url}/oauth/token", data=form | {"grant_type": "authorization_code"}, timeout=5
    )


def login(sim: Simulator, athlete_id: int, scope: str = ALL) -> dict[str, Any]:
    """Tokens for an athlete after a full consent + code exchange."""
    answer = exchange(sim, consent(sim, athlete_id, scope)["code"])
    assert answer.status_code == 200
    tokens: dict[str, Any] = answer.json()
    return tokens


def api(sim: Simulator, token: str) -> Callable[..., requests.Response]:
    """A request function for /api/v3 with a Bearer token."""

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return requests.request(
            method, f"{sim.url}/api/v3{path}", headers=headers, timeout=10, **kwargs
        )

    return call


def test_approval_page_and_bad_client(sim: Simulator) -> None:
    ada = sim.create_athlete()
    query: dict[str, Any] = {"client_id": sim.client_id, "redirect_uri": REDIRECT}
    query["response_type"] = "code"
    page = requests.get(f"{sim.url}/oauth/authorize", params=query | {"scope": ALL}, timeout=5)
    assert page.status_code == 200
    assert "local Strava simulator" in page.text
    assert f'value="{ada["id"]}"' in page.text
    assert 'value="activity:write" checked' in page.text
    assert 'name="decision" value="deny"' in page.text
    bad = requests.get(f"{sim.url}/oauth/authorize", params=query | {"client_id": 1}, timeout=5)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "client_id"


def test_code_flow_code_works_once(sim: Simulator) -> None:
    ada = sim.create_athlete(measurement_preference="meters")
    assert ada["id"] == 1001
    back = consent(sim, ada["id"])
    assert back["state"] == "xyz"
    assert back["scope"] == ALL
    first = exchange(sim, back["code"])
    assert first.status_code == 200
    body = first.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 21600
    assert body["expires_at"] == pytest.approx(time.time() + 21600, abs=5)
    assert body["athlete"]["id"] == ada["id"]
    assert body["athlete"]["resource_state"] == 2
    again = exchange(sim, back["code"])
    assert again.status_code == 400
    assert again.json()["errors"][0]["resource"] == "AuthorizationCode"
    assert "measurement_preference" not in body["athlete"]
    assert body["athlete"]["country"] == "Ireland"
    # Without profile:read_all, GET /athlete is the summary too; with it, the detail.
    me = api(sim, body["access_token"])("GET", "/athlete").json()
    assert "measurement_preference" not in me and me["resource_state"] == 2
    full = api(sim, login(sim, ada["id"], ALL + ",profile:read_all")["access_token"])
    assert full("GET", "/athlete").json()["measurement_preference"] == "meters"


def test_redirect_uri_must_be_on_the_callback_domain(sim: Simulator) -> None:
    """The approval page refuses a redirect_uri outside the app's registered domain."""
    query = {"client_id": sim.client_id, "response_type": "code", "scope": ALL}
    elsewhere = query | {"redirect_uri": "https://evil.example/cb"}
    page = requests.get(f"{sim.url}/oauth/authorize", params=elsewhere, timeout=5)
    assert page.status_code == 400
    assert page.json()["errors"][0]["field"] == "redirect_uri"
    sim.callback_domains = ("example.org",)
    sub = query | {"redirect_uri": "https://app.example.org/cb"}
    assert requests.get(f"{sim.url}/oauth/authorize", params=sub, timeout=5).status_code == 200


def test_athlete_limit_refuses_the_next_new_athlete(sim: Simulator) -> None:
    """With a cap, the token exchange of one athlete too many answers Strava's 403."""
    sim.athlete_limit = 1
    first, second = sim.create_athlete()["id"], sim.create_athlete()["id"]
    login(sim, first)
    login(sim, first)  # reconnecting the same athlete takes no new place
    refused = exchange(sim, consent(sim, second)["code"])
    assert refused.status_code == 403
    assert refused.json() == {
        "message": "Forbidden",
        "errors": [{"resource": "Application", "field": "athlete_limit", "code": "exceeded"}],
    }
    sim.revoke_athlete(first)
    assert exchange(sim, consent(sim, second)["code"]).status_code == 200


def test_unticked_scopes_new_athlete_and_denial(sim: Simulator) -> None:
    back = consent(sim, "new", granted=["activity:read_all"])
    assert back["scope"] == "read,activity:read_all"
    assert len(sim.athletes()) == 1
    form = {"client_id": sim.client_id, "redirect_uri": REDIRECT, "state": "s1"}
    denied = requests.post(
        f"{sim.url}/oauth/authorize", data=form | {"decision": "deny"}, allow_redirects=False,
        timeout=5,
    )  # fmt: skip
    assert denied.status_code == 302
    assert denied.headers["Location"] == f"{REDIRECT}?state=s1&error=access_denied"


def test_refresh_rotates_refresh_token(sim: Simulator) -> None:
    athlete_id = sim.create_athlete()["id"]
    tokens = login(sim, athlete_id)
    form = {"client_id": sim.client_id, "client_secret": sim.client_secret}
    form |= {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    # Long before expiry Strava hands back the same pair.
    same = requests.post(f"{sim.url}/oauth/token", data=form, timeout=5).json()
    assert (same["access_token"], same["refresh_token"]) == (
        tokens["access_token"],
        tokens["refresh_token"],
    )
    sim.refresh_same_within = sim.token_lifetime  # as if near expiry: a new pair; the old dies
    fresh = requests.post(f"{sim.url}/oauth/token", data=form, timeout=5)
    assert fresh.status_code == 200
    assert fresh.json()["refresh_token"] != tokens["refresh_token"]
    assert fresh.json()["access_token"] != tokens["access_token"]
    stale = requests.post(f"{sim.url}/oauth/token", data=form, timeout=5)
    assert stale.status_code == 400
    assert stale.json()["errors"] == [
        {"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}
    ]
    assert sim.refresh_count(athlete_id) == 2
    assert api(sim, tokens["access_token"])("GET", "/athlete").status_code == 200
    wrong = requests.post(f"{sim.url}/oauth/token", data=form | {"client_secret": "x"}, timeout=5)
    assert wrong.status_code == 401


def test_expired_token_gets_401(sim: Simulator) -> None:
    athlete_id = sim.create_athlete()["id"]
    call = api(sim, login(sim, athlete_id)["access_token"])
    assert call("GET", "/athlete").status_code == 200
    assert sim.expire_tokens(athlete_id) == 1
    answer = call("GET", "/athlete")
    assert answer.status_code == 401
    assert answer.json() == {
        "message": "Authorization Error",
        "errors": [{"resource": "Athlete", "field": "access_token", "code": "invalid"}],
    }


def test_get_and_put_activity(sim: Simulator, callback: Callback) -> None:
    assert subscribe(sim, callback).status_code == 201
    athlete_id = sim.create_athlete()["id"]
    run = sim.create_activity(
        athlete_id, activity_id=42, start_date_local="2024-07-01T07:30:00Z", workout_type=3
    )
    assert [e["aspect_type"] for e in callback.events] == ["create"]  # delivered synchronously
    call = api(sim, login(sim, athlete_id)["access_token"])
    got = call("GET", "/activities/42").json()
    assert got["start_date_local"] == "2024-07-01T07:30:00Z"
    assert got["start_date"] == "2024-07-01T06:30:00Z"  # London is on summer time
    assert got["utc_offset"] == 3600
    assert (got["type"], got["sport_type"], got["workout_type"]) == ("Run", "Run", 3)
    assert got["athlete"] == {"id": athlete_id, "resource_state": 1}
    assert got.keys() >= {"map", "laps", "private_note", "visibility", "embed_token"}
    assert got["embed_token"] == run["embed_token"]

    put = call("PUT", "/activities/42", json={"description": "Easy does it", "private_note": "n"})
    assert put.status_code == 200
    assert put.json()["description"] == "Easy does it"
    assert sim.activity(42)["private_note"] == "n"
    renamed = call("PUT", "/activities/42", json={"name": "Tempo"})
    assert renamed.status_code == 200
    events = callback.wait_for(2)
    assert len(events) == 2  # the description change did not make news, the rename did
    assert events[1]["updates"] == {"title": "Tempo"}

    sim.reject_private_note = True
    assert call("PUT", "/activities/42", json={"private_note": "x"}).status_code == 400
    read_only = api(sim, login(sim, athlete_id, "read,activity:read_all")["access_token"])
    denied = read_only("PUT", "/activities/42", json={"description": "x"})
    assert denied.status_code == 401
    assert denied.json()["errors"][0]["field"] == "activity:write_permission"


def test_private_and_foreign_activities_are_hidden(sim: Simulator) -> None:
    ada, bob = sim.create_athlete()["id"], sim.create_athlete("Bob")["id"]
    private = sim.create_activity(ada, private=True)["id"]
    foreign = sim.create_activity(bob)["id"]
    call = api(sim, login(sim, ada, "read,activity:read,activity:write")["access_token"])
    missing = call("GET", f"/activities/{private}")
    assert missing.status_code == 404
    assert missing.json()["errors"][0] == {
        "resource": "Activity", "field": "id", "code": "not found"
    }  # fmt: skip
    assert call("GET", f"/activities/{foreign}").status_code == 404
    assert call("GET", "/activities/999").status_code == 404
    full = api(sim, login(sim, ada)["access_token"])
    assert full("GET", f"/activities/{private}").json()["visibility"] == "only_me"


def test_athlete_activities_paging_and_window(sim: Simulator) -> None:
    athlete_id = sim.create_athlete()["id"]
    ids = [
        sim.create_activity(athlete_id, start_date_local=datetime(2024, 3, day, 8))["id"]
        for day in range(1, 6)
    ]
    call = api(sim, login(sim, athlete_id)["access_token"])
    page1 = call("GET", "/athlete/activities", params={"per_page": 2}).json()
    page3 = call("GET", "/athlete/activities", params={"per_page": 2, "page": 3}).json()
    assert [a["id"] for a in page1] == [ids[4], ids[3]]
    assert [a["id"] for a in page3] == [ids[0]]
    assert page1[0]["resource_state"] == 2
    assert "description" not in page1[0]

    def day(d: int) -> int:
        return int(datetime(2024, 3, d, tzinfo=UTC).timestamp())

    window = {"after": day(2), "before": day(4)}
    found = call("GET", "/athlete/activities", params=window).json()
    assert [a["id"] for a in found] == [ids[2], ids[1]]
    # Strava answers oldest first when only `after` is given.
    later = call("GET", "/athlete/activities", params={"after": day(4)}).json()
    assert [a["id"] for a in later] == [ids[3], ids[4]]


def test_rate_limits(sim: Simulator) -> None:
    athlete_id = sim.create_athlete()["id"]
    call = api(sim, login(sim, athlete_id)["access_token"])
    first = call("GET", "/athlete")
    assert first.headers["X-RateLimit-Limit"] == "200,2000"
    assert first.headers["X-RateLimit-Usage"] == "1,1"
    assert first.headers["X-ReadRateLimit-Limit"] == "100,1000"
    assert first.headers["X-ReadRateLimit-Usage"] == "1,1"
    sim.set_rate_limits(read_short=3)
    assert [call("GET", "/athlete").status_code for _ in range(4)] == [200, 200, 429, 429]
    over = call("GET", "/athlete")
    assert over.json()["message"] == "Rate Limit Exceeded"
    assert over.headers["X-ReadRateLimit-Usage"] == "6,6"  # rejected requests count too
    sim.set_rate_limits(window_seconds=1)
    time.sleep(1.05 - time.time() % 1)  # into the next aligned one-second window
    fresh = call("GET", "/athlete")
    assert fresh.status_code == 200
    assert fresh.headers["X-ReadRateLimit-Usage"] == "1,7"
    oauth = requests.post(f"{sim.url}/oauth/token", data={}, timeout=5)
    assert "X-RateLimit-Usage" not in oauth.headers


def test_fault_injection(sim: Simulator) -> None:
    athlete_id = sim.create_athlete()["id"]
    call = api(sim, login(sim, athlete_id)["access_token"])
    sim.fail_next(2, status=503)
    assert [call("GET", "/athlete").status_code for _ in range(3)] == [503, 503, 200]
    sim.timeout_delay = 0.2
    sim.fail_fraction(1.0, mode="timeout")
    started = time.monotonic()
    assert call("GET", "/athlete").status_code == 500
    assert time.monotonic() - started >= 0.2
    sim.fail_fraction(0.5, seed=7)
    outcomes = [call("GET", "/athlete").status_code for _ in range(20)]
    assert 0 < outcomes.count(500) < 20
    sim.clear_faults()
    assert call("GET", "/athlete").status_code == 200


def test_subscription_handshake_list_delete(sim: Simulator, callback: Callback) -> None:
    callback.echo = False
    failed = subscribe(sim, callback)
    assert failed.status_code == 400
    assert failed.json()["errors"][0]["field"] == "callback url"
    callback.echo = True
    created = subscribe(sim, callback)
    assert created.status_code == 201
    sub = created.json()
    assert (sub["application_id"], sub["callback_url"]) == (sim.client_id, callback.url)
    assert subscribe(sim, callback).json()["errors"][0]["code"] == "already exists"
    creds: dict[str, Any] = {"client_id": sim.client_id, "client_secret": sim.client_secret}
    url = f"{sim.url}/api/v3/push_subscriptions"
    assert [s["id"] for s in requests.get(url, params=creds, timeout=5).json()] == [sub["id"]]
    assert requests.get(url, params=creds | {"client_secret": "no"}, timeout=5).status_code == 401
    assert requests.delete(f"{url}/{sub['id']}", params=creds, timeout=5).status_code == 204
    assert requests.delete(f"{url}/{sub['id']}", data=creds, timeout=5).status_code == 404
    assert requests.get(url, params=creds, timeout=5).json() == []


def test_fire_event_and_retries(sim: Simulator, callback: Callback) -> None:
    with pytest.raises(NoSubscriptionError):
        sim.fire_event("activity", 1, "create", 1001)
    sub_id = subscribe(sim, callback).json()["id"]
    assert sim.fire_event("activity", 77, "update", 1001, {"type": "Walk"}, event_time=123) == [200]
    assert callback.events == [
        {
            "aspect_type": "update", "event_time": 123, "object_id": 77,
            "object_type": "activity", "owner_id": 1001, "subscription_id": sub_id,
            "updates": {"type": "Walk"},
        }
    ]  # fmt: skip
    owner = sim.create_athlete()["id"]
    sim.create_activity(owner, activity_id=5)
    sim.update_activity(5, private=True, description="quiet")
    sim.update_activity(5, description="description changes make no news")
    sim.delete_activity(5)
    seen = [(e["aspect_type"], e["object_id"], e["updates"]) for e in callback.events[1:]]
    assert seen == [("create", 5, {}), ("update", 5, {"private": "true"}), ("delete", 5, {})]
    callback.status = 500
    sim.event_retry_delay = 0.1  # about two minutes on Strava
    started = time.monotonic()
    assert sim.fire_event("activity", 77, "delete", 1001, retries=True) == [500, 500, 500]
    assert time.monotonic() - started >= 0.2
    assert sim.post_raw(b"not json", {"Content-Type": "text/plain"}).status_code == 500
    # Its own news is delivered the same way: the same body again, until a 200.
    before = len(callback.events)
    sim.create_activity(owner, activity_id=6)  # answered 500
    callback.status = 200
    deadline = time.monotonic() + 5
    while len(callback.events) < before + 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)
    retried = callback.events[before:]
    assert len(retried) == 2 and retried[0] == retried[1]


def test_deauthorize(sim: Simulator, callback: Callback) -> None:
    subscribe(sim, callback)
    athlete_id = sim.create_athlete()["id"]
    token = login(sim, athlete_id)["access_token"]
    bearer_only = requests.post(
        f"{sim.url}/oauth/deauthorize", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert bearer_only.status_code == 400  # Strava documents the access_token parameter
    answer = requests.post(f"{sim.url}/oauth/deauthorize", data={"access_token": token}, timeout=5)
    assert answer.json() == {"access_token": token}
    assert api(sim, token)("GET", "/athlete").status_code == 401
    event = callback.wait_for(1)[0]
    assert (event["object_type"], event["updates"]) == ("athlete", {"authorized": "false"})
    other = sim.create_athlete()["id"]
    tokens = login(sim, other)
    sim.deauthorize_athlete(other)
    assert callback.events[-1]["object_id"] == other
    assert api(sim, tokens["access_token"])("GET", "/athlete").status_code == 401


def test_revoke(sim: Simulator) -> None:
    """The revoke endpoint wants the app's credentials over HTTP Basic and kills both tokens."""
    athlete_id = sim.create_athlete()["id"]
    tokens = login(sim, athlete_id)
    url = f"{sim.url}/oauth/revoke"
    body = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    assert requests.post(url, data=body, timeout=5).status_code == 401
    wrong = requests.post(url, data=body, auth=(str(sim.client_id), "nope"), timeout=5)
    assert wrong.status_code == 401
    creds = (str(sim.client_id), sim.client_secret)
    assert requests.post(url, data=body, auth=creds, timeout=5).status_code == 200
    assert api(sim, tokens["access_token"])("GET", "/athlete").status_code == 401
    assert requests.post(url, data=body, auth=creds, timeout=5).json() == {}  # RFC 7009


def test_call_log_and_control_api(sim: Simulator) -> None:
    athlete = requests.post(f"{sim.url}/_sim/athletes", json={"firstname": "Cy"}, timeout=5)
    athlete_id = athlete.json()["id"]
    body = {"athlete_id": athlete_id, "activity_id": 42, "start_date_local": "2024-01-02T09:00:00"}
    assert requests.post(f"{sim.url}/_sim/activities", json=body, timeout=5).status_code == 201
    call = api(sim, login(sim, athlete_id)["access_token"])
    sim.reset_calls()
    call("GET", "/activities/42")
    call("PUT", "/activities/42", json={"description": "hi"})
    call("GET", "/activities/420")
    assert sim.count("GET", "/api/v3/activities/42") == 1
    assert sim.count("PUT", "/api/v3/activities/42") == 1
    assert sim.count(path_prefix="/api/v3/activities") == 3
    assert sim.calls("PUT")[0].athlete_id == athlete_id
    logged = requests.get(f"{sim.url}/_sim/calls", params={"method": "GET"}, timeout=5).json()
    assert [c["status"] for c in logged] == [200, 404]
    stored = requests.get(f"{sim.url}/_sim/activities/42", timeout=5).json()
    assert stored["description"] == "hi"


class _Rewrite(HTTPAdapter):
    """Send stravalib's https://www.strava.com requests to the simulator instead."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        request.url = (request.url or "").replace("https://www.strava.com", self.base, 1)
        return super().send(request, *args, **kwargs)


def test_stravalib_client(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILENCE_TOKEN_WARNINGS", "true")
    from stravalib import Client, exc

    athlete_id = sim.create_athlete()["id"]
    run_id = sim.create_activity(athlete_id, name="Long one", distance=21097.5)["id"]
    session = requests.Session()
    session.mount("https://www.strava.com", _Rewrite(sim.url))
    client = Client(rate_limit_requests=False, requests_session=session)
    code = consent(sim, athlete_id)["code"]
    client.exchange_code_for_token(sim.client_id, sim.client_secret, code)
    assert client.get_athlete().id == athlete_id
    activity = client.get_activity(run_id)
    assert activity.name == "Long one"
    assert float(activity.distance or 0) == 21097.5
    assert activity.sport_type is not None
    assert activity.sport_type.root == "Run"
    updated = client.update_activity(run_id, description="Well paced")
    assert updated.description == "Well paced"
    assert sim.activity(run_id)["description"] == "Well paced"
    assert sim.count("PUT", f"/api/v3/activities/{run_id}") == 1
    assert [a.id for a in client.get_activities(limit=5)] == [run_id]
    # stravalib's own deauthorize sends only a Bearer header (under /api/v3): refused here.
    with pytest.raises(exc.Fault):
        client.deauthorize()
    assert sim.count("POST", "/api/v3/oauth/deauthorize") == 1
