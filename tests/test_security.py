"""The security table: each row an attack on the service, each answered without letting anyone in.

Forged `state`, a state from another browser and a replayed callback code are in
test_connect.py; the rows here cover the rest of the table.
"""

from __future__ import annotations

import logging
import time

import pytest
import requests
from click.testing import Result
from cryptography.fernet import Fernet
from flask import Flask

from strava_massage import create_app
from strava_massage.domain.merge import BLOCK_START
from strava_massage.models import Token

from .conftest import Stack
from .helpers import csrf_token, rows_about


def test_a_post_without_csrf_token_changes_nothing(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    for path in ("/disconnect", "/logout"):
        r = browser.post(stack.url + path, data={}, allow_redirects=False)
        assert r.status_code == 400, path
    assert rows_about(stack, athlete) > 0
    assert browser.get(stack.url + "/dashboard").status_code == 200  # still logged in


def test_a_session_cookie_edited_to_another_runner_is_refused(stack: Stack) -> None:
    mine, theirs = (stack.sim.create_athlete()["id"] for _ in range(2))
    stack.connect(theirs)
    browser = stack.connect(mine)
    cookie = browser.cookies.get("session")
    assert cookie and str(mine).encode() not in cookie.encode()  # signed, not readable as is
    # Swap in a session naming the other runner, signed with a key the service does not know.
    forger = Flask("forger")
    forger.secret_key = "not-the-service-key"
    forged = forger.session_interface.get_signing_serializer(forger).dumps({"athlete_id": theirs})  # type: ignore[attr-defined]
    intruder = requests.Session()
    intruder.cookies.set("session", forged)
    r = intruder.get(stack.url + "/dashboard", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].endswith("/")
    # A page never takes a runner id from the request: asking for theirs shows mine.
    page = browser.get(stack.url + "/dashboard", params={"athlete_id": theirs}).text
    assert "Your running" in page
    r = browser.post(
        stack.url + "/disconnect", data={"csrf_token": csrf_token(page), "athlete_id": theirs}
    )
    assert r.status_code == 200
    time.sleep(0.3)  # Strava's deauthorization event follows; it must not bring anything back
    stack.wait_idle()
    assert rows_about(stack, mine) == 0 and rows_about(stack, theirs) > 0


def test_no_token_or_secret_ever_reaches_a_log_line(
    make_stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, stravalib's and urllib3's included
    stack: Stack = make_stack()
    stack.subscribe()
    stack.start_worker()
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    stack.sim.create_activity(athlete)
    stack.wait_idle()
    # A refresh issues a new pair: it must stay out of the logs too.
    stack.sim.expire_tokens(athlete)
    with stack.db.session() as session:
        session.get(Token, athlete).expires_at = int(time.time()) - 10  # type: ignore[union-attr]
        session.commit()
    stack.sim.create_activity(athlete)
    stack.sim.fail_next(1, status=500)  # an error path logs too
    stack.sim.create_activity(athlete)
    stack.wait_idle(timeout=40)
    page = browser.get(stack.url + "/dashboard").text
    browser.post(stack.url + "/disconnect", data={"csrf_token": csrf_token(page)})

    secrets = [*stack.sim.issued_secrets(), stack.sim.client_secret, "test-verify-token"]
    assert len(secrets) >= 6  # two pairs issued, plus the app's own secrets
    text = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert len(caplog.records) > 20, "the run should have logged"
    leaked = [s for s in secrets if s in text]
    assert leaked == []


def test_tokens_sealed_under_an_old_key_open_after_rotation(make_stack) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stack: Stack = make_stack(TOKEN_KEYS=old)
    stack.subscribe()
    stack.start_worker()
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    with stack.db.session() as session:
        before = session.get(Token, athlete)
        assert before is not None and b"" not in (before.access_token, before.refresh_token)
        sealed = before.access_token
    assert Fernet(old.encode()).decrypt(sealed)  # sealed under the only key there was

    def rotate_with(keys: str) -> Result:
        """`strava-massage keys rotate` run by an app configured with these keys."""
        cfg = stack.app.config
        app = create_app(
            {
                "TESTING": True,
                **{k: cfg[k] for k in ("DATABASE_URL", "QUEUE_URL", "QUEUE_NAME")},
                **{k: cfg[k] for k in ("STRAVA_BASE_URL", "STRAVA_CLIENT_ID")},
                **{k: cfg[k] for k in ("STRAVA_CLIENT_SECRET", "STRAVA_VERIFY_TOKEN")},
                "TOKEN_KEYS": keys,
            }
        )
        try:
            return app.test_cli_runner().invoke(args=["keys", "rotate"])
        finally:
            app.extensions["tasks"].close()
            app.extensions["db"].dispose()

    # The new key goes first; the old one still opens what it sealed, then rotation re-seals.
    result = rotate_with(f"{new},{old}")
    assert result.exit_code == 0, result.output
    assert "1 runner(s)" in result.output
    with stack.db.session() as session:
        after = session.get(Token, athlete)
        assert after is not None and after.access_token != sealed
        assert Fernet(new.encode()).decrypt(after.access_token)

    # With the old key gone, the service still works for this runner.
    # (The first stack's web process still takes the webhook; this worker handles the job.)
    stack.stop_worker()
    only_new = make_stack(TOKEN_KEYS=new, QUEUE_NAME=stack.app.config["QUEUE_NAME"])
    only_new.start_worker()
    run = only_new.sim.create_activity(athlete)
    only_new.wait_idle()
    assert BLOCK_START in only_new.sim.activity(run["id"])["description"]

    # A key set that opens nothing is reported, runner by runner, and nothing is rewritten.
    stranger = Fernet.generate_key().decode()
    result = rotate_with(stranger)
    assert result.exit_code == 1
    assert str(athlete) in result.output and "connect again" in result.output


def test_a_session_signed_with_the_previous_secret_key_still_works(make_stack) -> None:
    first: Stack = make_stack(SECRET_KEY="first-secret")
    athlete = first.sim.create_athlete()["id"]
    browser = first.connect(athlete)
    rotated: Stack = make_stack(SECRET_KEY="second-secret", SECRET_KEY_FALLBACKS=["first-secret"])
    cookie = browser.cookies.get("session")
    later = requests.Session()
    later.cookies.set("session", cookie)
    assert "Your running" in later.get(rotated.url + "/dashboard").text
    dropped: Stack = make_stack(SECRET_KEY="second-secret")
    r = later.get(dropped.url + "/dashboard", allow_redirects=False)
    assert r.status_code == 302  # once the old key is gone, so is the old session


@pytest.mark.parametrize(
    ("target", "lands_on"),
    [
        ("/dashboard?from=email", "/dashboard?from=email"),
        ("//evil.example/dashboard", "/dashboard"),
        ("https://evil.example/", "/dashboard"),
        ("/\\evil.example", "/dashboard"),
        ("javascript:alert(1)", "/dashboard"),
        ("/dashboard\r\nSet-Cookie: x=1", "/dashboard"),
    ],
)
def test_next_only_ever_leads_back_to_this_site(make_stack, target: str, lands_on: str) -> None:
    stack: Stack = make_stack()
    athlete = stack.sim.create_athlete()["id"]
    _, response = stack.sim.connect_via(stack.url, athlete, next_path=target)
    assert response.status_code == 200
    assert response.url == stack.url + lands_on
    assert all(h.headers.get("Location", "").startswith("/") for h in response.history[-1:])


def test_disconnect_revokes_at_strava_and_deletes_everything(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    stack.sim.create_activity(athlete)
    stack.wait_idle()
    assert rows_about(stack, athlete) >= 4
    page = browser.get(stack.url + "/dashboard").text
    r = browser.post(stack.url + "/disconnect", data={"csrf_token": csrf_token(page)})
    assert r.status_code == 200 and "withdrawn" in r.text
    assert stack.sim.count("POST", "/oauth/deauthorize") == 1
    # Strava's deauthorization event follows (it may even slip in while the rows go): once
    # the worker is idle, nothing about the runner is left.
    time.sleep(0.3)
    stack.wait_idle()
    assert rows_about(stack, athlete) == 0
    assert browser.get(stack.url + "/dashboard", allow_redirects=False).status_code == 302


def test_disconnect_deletes_the_data_even_when_strava_is_down(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()["id"]
    browser = stack.connect(athlete)
    page = browser.get(stack.url + "/dashboard").text
    stack.sim.oauth_down = True
    try:
        r = browser.post(stack.url + "/disconnect", data={"csrf_token": csrf_token(page)})
    finally:
        stack.sim.oauth_down = False
    assert r.status_code == 200 and "could not be reached" in r.text
    assert rows_about(stack, athlete) == 0


def test_every_answer_carries_the_headers_and_a_webhook_sets_no_cookie(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()["id"]
    stack.connect(athlete)
    body = {"object_type": "activity", "object_id": 5, "aspect_type": "create", "owner_id": athlete,
            "subscription_id": stack.sim.subscription["id"], "event_time": 1, "updates": {}}  # type: ignore[index]  # fmt: skip
    hook = requests.post(stack.sim.subscription["callback_url"], json=body, timeout=10)  # type: ignore[index]
    page = requests.get(stack.url + "/", timeout=10)
    for answer in (hook, page):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "same-origin"
    assert hook.json() == {"status": "received"} and "Set-Cookie" not in hook.headers
    assert "Content-Security-Policy" not in hook.headers
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
