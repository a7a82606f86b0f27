"""What a deployment is built from: the pinned requirements, the runtime file, the systemd units
and the settings reference of docs/deploy.md; and /metrics kept private in production."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from strava_massage import create_app
from strava_massage.db import Database

from .helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "metrics-token-for-tests"


@pytest.fixture(scope="module")
def reqcheck() -> ModuleType:
    """CI's requirements check (.ci/check_requirements.py), loaded from its file."""
    spec = importlib.util.spec_from_file_location(
        "check_requirements", ROOT / ".ci" / "check_requirements.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy(
    tmp_path: Path, setup_extra: str = "", lock_sub: tuple[str, str] = ("", "")
) -> tuple[Path, Path]:
    """setup.cfg and requirements.lock copied, with one requirement added or one line changed."""
    setup = (ROOT / "setup.cfg").read_text()
    if setup_extra:
        setup = setup.replace("install_requires =\n", f"install_requires =\n    {setup_extra}\n")
    lock = (ROOT / "requirements.lock").read_text()
    old, new = lock_sub
    if old:
        assert old in lock
        lock = lock.replace(old, new)
    (tmp_path / "setup.cfg").write_text(setup)
    (tmp_path / "requirements.lock").write_text(lock)
    return tmp_path / "setup.cfg", tmp_path / "requirements.lock"


# -- the pinned requirements ---------------------------------------------------------------------


def test_the_lock_pins_every_install_requirement_within_its_bounds(reqcheck: ModuleType) -> None:
    """What CI checks first: setup.cfg's install_requires, each pinned at an accepted version."""
    required = reqcheck.install_requires(ROOT / "setup.cfg")
    assert "Flask>=3.1" in required and not any(r.startswith("pytest") for r in required)
    assert reqcheck.static_problems(ROOT / "setup.cfg", ROOT / "requirements.lock") == []


def test_a_new_requirement_without_a_pin_is_named(reqcheck: ModuleType, tmp_path: Path) -> None:
    setup, lock = _copy(tmp_path, setup_extra="left-pad>=1.0")
    problems = reqcheck.static_problems(setup, lock)
    assert problems == [
        "setup.cfg requires 'left-pad>=1.0' but requirements.lock does not pin left-pad"
    ]


def test_a_pin_below_the_lower_bound_is_named(reqcheck: ModuleType, tmp_path: Path) -> None:
    pinned = re.search(r"^redis==\S+$", (ROOT / "requirements.lock").read_text(), re.M)
    assert pinned
    setup, lock = _copy(tmp_path, lock_sub=(pinned.group(0), "redis==4.6.0"))
    assert reqcheck.static_problems(setup, lock) == [
        "setup.cfg requires 'redis>=5.0' but requirements.lock pins redis==4.6.0"
    ]


def test_a_range_instead_of_a_pin_is_named(reqcheck: ModuleType, tmp_path: Path) -> None:
    pinned = re.search(r"^huey==\S+$", (ROOT / "requirements.lock").read_text(), re.M)
    assert pinned
    setup, lock = _copy(tmp_path, lock_sub=(pinned.group(0), "huey>=3.5"))
    problems = reqcheck.static_problems(setup, lock)
    assert "requirements.lock: 'huey>=3.5' is not pinned to one version (==)" in problems


def test_an_extras_package_left_out_or_a_stale_pin_is_named(
    reqcheck: ModuleType, tmp_path: Path
) -> None:
    """psycopg[binary] needs psycopg-binary, which pip check never asks about; a pin nothing
    needs any more is stale. Read from this environment's installed metadata."""
    pinned = re.search(r"^psycopg-binary==\S+\n", (ROOT / "requirements.lock").read_text(), re.M)
    assert pinned
    setup, lock = _copy(tmp_path, lock_sub=(pinned.group(0), "six==1.16.0\n"))
    problems = reqcheck.closure_problems(setup, lock)
    # Membership, not equality: this environment's packages may be newer than the lock's.
    assert "setup.cfg needs psycopg-binary, which requirements.lock does not pin" in problems
    assert "requirements.lock pins six, which setup.cfg no longer needs" in problems


def test_requirements_txt_installs_legwork_at_the_locked_versions() -> None:
    """What a buildpack runs (`pip install -r requirements.txt`): the project, constrained."""
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["-c requirements.lock", "."]


def test_ci_runs_the_requirements_check_before_the_tests() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert run.index("python3 .ci/check_requirements.py") < run.index("== pass 1 of 2")


def test_the_runtime_file_names_the_python_ci_uses() -> None:
    """.python-version (what Heroku's buildpack reads) is a major.minor, the oldest Python
    setup.cfg allows: the one CI runs the tests on."""
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", version)
    setup = (ROOT / "setup.cfg").read_text()
    found = re.search(r"^python_requires = >=(\d+\.\d+)$", setup, re.M)
    assert found and version == found.group(1)


# -- the systemd units -----------------------------------------------------------------------------


def _exec_start(unit: str) -> list[str]:
    """The ExecStart command of a unit under deploy/, split as systemd splits it."""
    text = (ROOT / "deploy" / unit).read_text()
    found = re.search(r"^ExecStart=(.+)$", text, re.M)
    assert found, unit
    return shlex.split(found.group(1))


def _procfile(kind: str) -> list[str]:
    """A Procfile line's command, split."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return shlex.split(line.split(":", 1)[1])
    raise AssertionError(f"no {kind}: line in the Procfile")


def test_the_worker_unit_runs_the_procfile_worker() -> None:
    command = _exec_start("legwork-worker.service")
    assert command[0] == "/opt/legwork/venv/bin/strava-massage"
    assert ["strava-massage", *command[1:]] == _procfile("worker")


@pytest.fixture
def production_env(tmp_path: Path) -> dict[str, str]:
    """A production process's environment (https PUBLIC_URL, no METRICS_TOKEN) on SQLite."""
    database = f"sqlite:///{tmp_path / 'app.db'}"
    Database(database).upgrade()
    env = {k: v for k, v in os.environ.items() if k != "METRICS_TOKEN"}
    env.update(
        STRAVA_CLIENT_ID="12345", STRAVA_CLIENT_SECRET="s", STRAVA_VERIFY_TOKEN="v",
        SECRET_KEY="k" * 32, TOKEN_KEYS=Fernet.generate_key().decode(),
        PUBLIC_URL="https://legwork.example.org", DATABASE_URL=database,
        QUEUE_URL=f"sqlite:///{tmp_path / 'queue.db'}", DATA_DIR=str(tmp_path),
        WEB_CONCURRENCY="1", WEB_THREADS="2", HOME=str(tmp_path),
    )  # fmt: skip
    return env


def test_the_web_unit_serves_on_loopback_only(
    production_env: dict[str, str], tmp_path: Path
) -> None:
    """The unit's own command line: `--bind 127.0.0.1:...` after the config file wins over the
    config's 0.0.0.0:$PORT, so only the reverse proxy on the host reaches gunicorn."""
    command = _exec_start("legwork-web.service")
    assert command[0] == "/opt/legwork/venv/bin/gunicorn"
    web = _procfile("web")
    assert command[1:3] == web[1:3] and command[-1] == web[-1]  # the Procfile's config and app
    port = free_port()
    bind = command.index("--bind")
    assert command[bind + 1] == "127.0.0.1:8000"
    command = [sys.executable, "-m", "gunicorn", *command[1:bind], "--bind", f"127.0.0.1:{port}",
               *command[bind + 2 :]]  # fmt: skip
    log = tmp_path / "web.log"
    # PORT is what the config binds without --bind: were the flag ignored, nothing would answer.
    env = {**production_env, "PORT": str(free_port())}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/healthz")
        assert health is not None, log.read_text()[-2000:]
        assert health.status_code == 200
        # Production without METRICS_TOKEN: no metrics, as if there were no such page.
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert f"Listening at: http://127.0.0.1:{port}" in log.read_text()
    assert "0.0.0.0" not in log.read_text()  # noqa: S104  (the address must not appear)


def _wait_for(url: str, seconds: float = 30) -> requests.Response | None:
    """The first answer from a server that is still starting, or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=5)
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    return None


# -- the settings reference ----------------------------------------------------------------------


def _settings() -> set[str]:
    """Every environment variable the service reads: the names config.py and gunicorn's config
    pass to a reader (`get("NAME", ...)`, `number("NAME", ...)`, `environ.get("NAME")`...)."""
    names: set[str] = set()
    for module in ("config.py", "gunicorn_config.py"):
        source = (ROOT / "strava_massage" / module).read_text()
        names |= set(re.findall(r"""\(\s*["']([A-Z][A-Z0-9_]{2,})["']\s*[,)]""", source))
    # Switches only the tests and the demo pass to create_app, never read from the environment.
    return names - {"TESTING", "DEMO"}


def test_every_setting_is_in_the_deploy_guides_reference() -> None:
    """docs/deploy.md's settings tables name every variable config.py and gunicorn read."""
    names = _settings()
    assert {"WEB_ACCESS_LOG", "WEB_MAX_REQUESTS", "STRAVA_TIMEOUT_SECONDS"} <= names
    assert {"TOKEN_REFRESH_MARGIN_SECONDS", "SECRET_KEY_FALLBACKS", "PORT"} <= names
    guide = (ROOT / "docs" / "deploy.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", guide, re.M))
    documented |= {
        name
        for row in re.findall(r"^\|([^|]+)\|", guide, re.M)
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)
    }
    assert sorted(names - documented) == []


# -- /metrics ------------------------------------------------------------------------------------


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Any]:
    """Build apps with config overrides on a migrated SQLite database; closed afterwards."""
    apps: list[Flask] = []

    def build(**overrides: Any) -> FlaskClient:
        app = create_app(
            {
                "TESTING": True,
                "STRAVA_VERIFY_TOKEN": "v",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
                "QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
                **overrides,
            }
        )
        app.extensions["db"].upgrade()
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        app.extensions["tasks"].close()
        app.extensions["db"].dispose()


def test_metrics_in_production_without_a_token_are_off(make_app: Any) -> None:
    client = make_app(PUBLIC_URL="https://legwork.example.org")
    answer = client.get("/metrics")
    assert answer.status_code == 404
    assert answer.get_json() == {"error": "not found"}
    # A guessed token changes nothing: there is none to match.
    assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 404


def test_metrics_in_production_answer_the_token_only(make_app: Any) -> None:
    client = make_app(PUBLIC_URL="https://legwork.example.org", METRICS_TOKEN=TOKEN)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert "legwork_queue_depth" in answer.get_data(as_text=True)


def test_metrics_stay_open_on_a_local_address(make_app: Any) -> None:
    """The demo and a machine's own http:// address: open, as a local Prometheus expects."""
    client = make_app(PUBLIC_URL="http://127.0.0.1:5000")
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert "legwork_queue_depth" in answer.get_data(as_text=True)


def test_every_link_in_the_docs_leads_to_a_file_in_the_repository() -> None:
    """A clone holds everything the README and docs link to: no link leaves the repository."""
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        for target in re.findall(r"\]\(([^)\s#]+)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a web address, not a file
            path = (page.parent / target).resolve()
            assert path.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
            assert path.exists(), f"{page.name} links to a missing file: {target}"
            checked += 1
    assert checked >= 10  # the README's and docs' own links were found
