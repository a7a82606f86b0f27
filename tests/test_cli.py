"""The command line: subscription management, events, db upgrade, serve, config errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from strava_massage.cli import COMMANDS

from .conftest import VERIFY_TOKEN, Stack

ROOT = Path(__file__).resolve().parents[1]


def test_subscription_create_show_delete(make_stack) -> None:
    stack: Stack = make_stack()
    runner = stack.app.test_cli_runner()
    created = runner.invoke(args=["subscription", "create"])
    assert created.exit_code == 0, created.output
    callback = stack.url + "/webhooks/strava/" + stack.app.config["WEBHOOK_SECRET"]
    assert "created for " + callback in created.output
    assert stack.sim.subscription is not None
    shown = runner.invoke(args=["subscription", "show"])
    assert f"callback URL: {callback}" in shown.output
    assert "not this service's callback URL" not in shown.output
    assert f"stored: {stack.sim.subscription['id']}" in shown.output
    assert f"at Strava: {stack.sim.subscription['id']}" in shown.output
    again = runner.invoke(args=["subscription", "create"])
    assert again.exit_code == 1
    assert "refused" in again.output
    deleted = runner.invoke(args=["subscription", "delete"])
    assert deleted.exit_code == 0 and "deleted subscription" in deleted.output
    assert stack.sim.subscription is None
    assert "stored: none" in runner.invoke(args=["subscription", "show"]).output


def test_subscription_create_fails_clearly_when_handshake_fails(make_stack) -> None:
    stack: Stack = make_stack(STRAVA_VERIFY_TOKEN="not-what-we-send")
    result = stack.app.test_cli_runner().invoke(
        args=["subscription", "create", "--callback-url", "http://127.0.0.1:9/nowhere"]
    )
    assert result.exit_code == 1
    assert "Strava refused the subscription" in result.output


def test_events_lists_status_and_filters(stack: Stack) -> None:
    athlete = stack.sim.create_athlete()
    stack.connect(athlete["id"])
    stack.sim.create_activity(athlete["id"])
    stack.sim.create_activity(athlete["id"], sport_type="Ride")
    stack.wait_idle()
    runner = stack.app.test_cli_runner()
    listing = runner.invoke(args=["events"])
    assert listing.exit_code == 0
    assert listing.output.count("activity.create") == 2
    assert "note written" in listing.output and "not a run (Ride)" in listing.output
    assert runner.invoke(args=["events", "--pending"]).output.strip() == "no events"
    assert runner.invoke(args=["events", "--failed"]).output.strip() == "no events"


def test_every_command_has_help() -> None:
    for command in COMMANDS:
        assert command.help, command.name


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRAVA_", "DATABASE", "QUEUE"))
    }
    # The package may be installed or only checked out: make the checkout importable either way.
    return {**keep, "PYTHONPATH": str(ROOT), **extra}


def test_missing_settings_name_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "strava_massage", "db", "upgrade"],
        env=_env(tmp_path, STRAVA_VERIFY_TOKEN="x"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "STRAVA_CLIENT_ID" in result.stderr and "TOKEN_KEYS" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_answers_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = _env(
        tmp_path,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        # gunicorn would put its control socket under HOME (or XDG_RUNTIME_DIR): it must not.
        HOME=str(tmp_path),
        XDG_RUNTIME_DIR="",
        STRAVA_CLIENT_ID="1",
        STRAVA_CLIENT_SECRET="x",
        STRAVA_VERIFY_TOKEN=VERIFY_TOKEN,
        SECRET_KEY="s",
        TOKEN_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{tmp_path / 'app.db'}",
        QUEUE_URL=f"sqlite:///{tmp_path / 'q.db'}",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "strava_massage", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["queue"] == "ok"
        page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert "Connect with Strava" in page.text
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert requests.get(f"http://127.0.0.1:{port}/nope", timeout=5).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0, output
    assert (tmp_path / "app.db").exists()
    # Where the data is, and one line for the migrations instead of Alembic's log.
    assert f"database: {tmp_path / 'app.db'}" in output
    assert "database is up to date (revision " in output
    assert "Context impl" not in output and "Running upgrade" not in output
    assert not (tmp_path / ".gunicorn").exists()
