"""The command line as a new operator meets it: help with nothing configured, one clear line
(and exit status 2) for each configuration mistake, where the data lives, backups, and numbers
from the command line checked before anything runs."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from sqlalchemy.exc import OperationalError

from strava_massage import __version__
from strava_massage.cli import cli
from strava_massage.config import earlier_data_dir, load_config
from strava_massage.db import Database
from strava_massage.models import Activity, Athlete
from strava_massage.services.database import database_problem

from .conftest import REQUIRE_SCALEOUT, TEST_DATABASE_URL
from .helpers import free_port

SCRIPT = Path(sys.executable).parent / "strava-massage"
# Every setting read as a number: each must be refused, by name, when it is not one.
NUMBER_SETTINGS = [
    "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT", "QUEUE_MAX_CONNECTIONS",
    "SWEEP_AFTER_SECONDS", "SWEEP_INTERVAL_SECONDS", "IDLE_CHECK_DAYS",
    "IDLE_CHECK_INTERVAL_SECONDS", "WORKER_THREADS", "STRAVA_TIMEOUT_SECONDS",
    "TOKEN_REFRESH_MARGIN_SECONDS", "RATE_WINDOW_SECONDS", "MAX_ATTEMPTS", "RETRY_BASE_SECONDS",
    "MAX_REQUEST_BYTES", "TRUSTED_PROXIES",
]  # fmt: skip
# Settings the operator's environment must not leak into these tests.
SETTINGS = [
    *NUMBER_SETTINGS, "STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET", "STRAVA_VERIFY_TOKEN",
    "SECRET_KEY", "TOKEN_KEYS", "PUBLIC_URL", "DATABASE_URL", "QUEUE_URL", "DATA_DIR",
    "STRAVA_RATE_LIMITS", "STRAVA_MASSAGE_DEMO", "PORT",
]  # fmt: skip


def production_settings() -> dict[str, str]:
    """Everything a real deployment must set (no database: the default in instance/)."""
    return {
        "STRAVA_CLIENT_ID": "1",
        "STRAVA_CLIENT_SECRET": "secret",
        "STRAVA_VERIFY_TOKEN": "verify",
        "SECRET_KEY": "session-key",
        "TOKEN_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_URL": "https://legwork.example.com",
    }


@pytest.fixture
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A working directory of its own and a production configuration in the environment."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = production_settings()
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


def invoke(*args: str) -> Result:
    """Run the console script's command group in this process."""
    return CliRunner().invoke(cli, list(args))


def run_script(
    args: list[str], cwd: Path, timeout: float = 60, **settings: str
) -> subprocess.CompletedProcess[str]:
    """The installed `strava-massage` with nothing in its environment but PATH, HOME and
    `settings`."""
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), **settings}
    return subprocess.run(
        [str(SCRIPT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line(stderr: str) -> str:
    """The single line a mistake is told in (and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under `group`, as the words that name it."""
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += command_paths(command, (*prefix, name))
    return found


# -- help and version with nothing configured ---------------------------------------------------


def test_every_help_works_with_an_empty_environment(tmp_path: Path) -> None:
    paths = [(), *command_paths(cli)]
    assert ("events", "replay") in paths and ("db", "backup") in paths
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: run_script([*p, "--help"], tmp_path), paths))
    for path, result in zip(paths, results, strict=True):
        words = " ".join(path) or "(top)"
        assert result.returncode == 0, (words, result.stderr)
        assert "Usage:" in result.stdout, words
        assert result.stderr == "", (words, result.stderr)
    top = results[0].stdout
    # The service's own options only: none of Flask's.
    for flask_option in ("--env-file", "--app", "--debug"):
        assert flask_option not in top
    assert not (tmp_path / "instance").exists()  # help built no app and made no database


def test_bare_command_prints_help(tmp_path: Path) -> None:
    result = run_script([], tmp_path)
    assert result.returncode == 0 and result.stderr == ""
    assert "Usage: strava-massage" in result.stdout and "serve" in result.stdout


def test_version_is_the_service_s(tmp_path: Path) -> None:
    result = run_script(["--version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"strava-massage {__version__}\n"
    assert "Flask" not in result.stdout


# -- configuration mistakes: one line, exit 2 ----------------------------------------------------


def test_nothing_configured_names_every_missing_setting(tmp_path: Path) -> None:
    result = run_script(["db", "upgrade"], tmp_path)
    assert result.returncode == 2
    line = one_line(result.stderr)
    for name in ("STRAVA_CLIENT_ID", "SECRET_KEY", "TOKEN_KEYS", "PUBLIC_URL"):
        assert name in line
    assert "https address Strava will call" in line


def test_a_token_key_that_is_no_fernet_key(tmp_path: Path) -> None:
    settings = {**production_settings(), "TOKEN_KEYS": "notakey"}
    result = run_script(["runner", "show", "1"], tmp_path, **settings)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "TOKEN_KEYS is not a Fernet key" in line and "notakey" not in line


def test_worker_threads_not_a_number(tmp_path: Path) -> None:
    settings = {**production_settings(), "WORKER_THREADS": "two"}
    result = run_script(["worker"], tmp_path, **settings)
    assert result.returncode == 2
    assert "WORKER_THREADS must be a whole number, not 'two'" in one_line(result.stderr)


def test_the_list_of_number_settings_is_complete(tmp_path: Path) -> None:
    cfg = load_config(str(tmp_path), {"TESTING": True, "STRAVA_VERIFY_TOKEN": "v"})
    numbers = {
        name
        for name, value in cfg.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    assert numbers == set(NUMBER_SETTINGS)


@pytest.mark.parametrize("name", NUMBER_SETTINGS)
def test_every_number_setting_is_checked(name: str, operator: dict[str, str], monkeypatch) -> None:
    monkeypatch.setenv(name, "lots")
    result = invoke("events")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert name in line and "'lots'" in line


def test_a_negative_thread_count_is_refused(operator: dict[str, str], monkeypatch) -> None:
    monkeypatch.setenv("WORKER_THREADS", "0")
    result = invoke("events")
    assert result.exit_code == 2
    assert "WORKER_THREADS must be a whole number of at least 1" in one_line(result.stderr)


def test_public_url_is_required_outside_demo_and_tests(
    operator: dict[str, str], monkeypatch
) -> None:
    monkeypatch.delenv("PUBLIC_URL")
    result = invoke("events")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "PUBLIC_URL" in line and "https address Strava will call" in line
    monkeypatch.setenv("PUBLIC_URL", "legwork.example.com")
    result = invoke("events")
    assert result.exit_code == 2
    assert "PUBLIC_URL must be the address Strava will call" in one_line(result.stderr)


def test_serve_refuses_a_local_public_url_on_another_port(
    operator: dict[str, str], monkeypatch
) -> None:
    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:5000")
    result = invoke("serve", "--port", "5058")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "PUBLIC_URL" in line and "5000" in line and "5058" in line
    assert not (Path.cwd() / "instance" / "strava-massage.db").exists()  # refused before


def test_the_procfile_web_command_says_what_is_missing(tmp_path: Path) -> None:
    command = [str(SCRIPT.parent / "gunicorn"), "-c", "python:strava_massage.gunicorn_config",
               "strava_massage:create_app()"]  # fmt: skip
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PORT": str(free_port())}
    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "PUBLIC_URL" in errors[0]
    bad = subprocess.run(
        command, env={**env, "WEB_THREADS": "eight"}, cwd=tmp_path, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert one_line(bad.stderr) == "error: WEB_THREADS must be a whole number, not 'eight'"


def test_a_refused_database_port_is_one_line(tmp_path: Path) -> None:
    settings = {
        **production_settings(),
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/legwork",
    }
    result = run_script(["db", "upgrade"], tmp_path, **settings)
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "cannot be reached at 127.0.0.1:1" in line and "DATABASE_URL" in line
    assert "PostgreSQL database legwork on 127.0.0.1:1" in result.stdout


def test_a_file_that_is_no_database(operator: dict[str, str]) -> None:
    (Path.cwd() / "instance").mkdir()
    database = Path.cwd() / "instance" / "strava-massage.db"
    database.write_bytes(b"not a database" * 100)
    result = invoke("events")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert f"the database file {database} cannot be opened" in line and "DATA_DIR" in line


def test_a_database_never_upgraded(operator: dict[str, str]) -> None:
    result = invoke("runner", "show", "1")
    assert result.exit_code == 2
    assert "run `strava-massage db upgrade`" in one_line(result.stderr)


def test_only_database_failures_become_one_line() -> None:
    url = "sqlite:////srv/legwork/strava-massage.db"
    assert database_problem(url, ValueError("a bug")) is None
    locked = OperationalError("UPDATE events", {}, sqlite3.OperationalError("database is locked"))
    assert database_problem(url, locked) is None  # a statement failed: a fault, not a setting
    refused = OperationalError(None, None, sqlite3.OperationalError("unable to open"))
    problem = database_problem(url, refused)
    assert problem is not None and "/srv/legwork/strava-massage.db" in problem


def postgres_reason() -> str | None:
    """Why the local PostgreSQL cannot be used, or None when it answers."""
    try:
        import psycopg

        psycopg.connect(TEST_DATABASE_URL, connect_timeout=2).close()
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


@pytest.mark.scaleout
def test_db_upgrade_creates_a_missing_postgresql_database(operator: dict[str, str], monkeypatch):
    reason = postgres_reason()
    if reason:
        if REQUIRE_SCALEOUT:
            pytest.fail(f"PostgreSQL required in CI but unavailable: {reason}")
        pytest.skip(f"PostgreSQL unavailable: {reason}")
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"legwork_new_{uuid.uuid4().hex[:10]}"
    url = make_url(TEST_DATABASE_URL).set(database=name)
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    try:
        before = invoke("events")
        assert before.exit_code == 2
        line = one_line(before.stderr)
        assert f"the database {name} does not exist" in line and "db upgrade" in line
        created = invoke("db", "upgrade")
        assert created.exit_code == 0, created.output
        assert f"database: PostgreSQL database {name} on " in created.stdout
        assert "database created" in created.stdout
        assert "database is up to date (revision " in created.stdout
        again = invoke("db", "upgrade")
        assert again.exit_code == 0 and "database created" not in again.stdout
        assert invoke("events").stdout.strip() == "no events"
    finally:
        admin = make_url(TEST_DATABASE_URL).set(database="postgres")
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- where the data lives -------------------------------------------------------------------------


def test_the_database_lives_in_the_working_directory(tmp_path: Path) -> None:
    result = run_script(["db", "upgrade"], tmp_path, **production_settings())
    assert result.returncode == 0, result.stderr
    database = tmp_path / "instance" / "strava-massage.db"
    assert database.is_file()
    assert result.stdout.splitlines()[0] == f"database: {database}"
    assert "database is up to date (revision " in result.stdout
    # One line for the migrations: none of Alembic's log.
    assert "Context impl" not in result.stderr and "Running upgrade" not in result.stderr


def test_data_dir_moves_the_data(tmp_path: Path) -> None:
    settings = {**production_settings(), "DATA_DIR": "data"}
    result = run_script(["db", "upgrade"], tmp_path, **settings)
    assert result.returncode == 0, result.stderr
    assert f"database: {tmp_path / 'data' / 'strava-massage.db'}" in result.stdout
    assert (tmp_path / "data" / "queue.db").is_file()
    assert not (tmp_path / "instance").exists()


def test_data_left_in_the_virtualenv_is_not_silently_abandoned(
    operator: dict[str, str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    earlier = earlier_data_dir()
    earlier.mkdir(parents=True)
    sqlite3.connect(earlier / "strava-massage.db").close()
    result = invoke("db", "upgrade")
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert str(earlier) in line and "DATA_DIR" in line
    assert not (tmp_path / "instance" / "strava-massage.db").exists()
    monkeypatch.setenv("DATA_DIR", str(earlier))
    moved = invoke("db", "upgrade")
    assert moved.exit_code == 0 and f"database: {earlier / 'strava-massage.db'}" in moved.stdout


# -- backup and restore ---------------------------------------------------------------------------


def test_backup_while_a_writer_writes_then_restore(operator: dict[str, str]) -> None:
    assert invoke("db", "upgrade").exit_code == 0
    live = Path.cwd() / "instance" / "strava-massage.db"
    writer_db = sqlite3.connect(live, timeout=30, check_same_thread=False)
    writer_db.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY, payload TEXT)")
    writer_db.commit()
    written = [0]
    stop = threading.Event()
    enough = threading.Event()

    def write() -> None:
        while not stop.is_set():
            writer_db.execute("INSERT INTO probe (payload) VALUES (?)", ("x" * 200,))
            writer_db.commit()
            written[0] += 1
            if written[0] >= 200:
                enough.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert enough.wait(30)
        result = invoke("db", "backup", "backup.db")
        at_backup_end = written[0]
        # The writer carries on after the backup: it was never blocked for good.
        deadline = time.monotonic() + 20
        while written[0] < at_backup_end + 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert written[0] >= at_backup_end + 50
    finally:
        stop.set()
        writer.join()
        writer_db.close()
    assert result.exit_code == 0, result.output
    copy = Path.cwd() / "backup.db"
    assert f"written to {copy}" in result.stdout and "KB" in result.stdout
    with sqlite3.connect(copy) as backup:
        assert backup.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert backup.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        ids = [row[0] for row in backup.execute("SELECT id FROM probe ORDER BY id")]
        (revision,) = backup.execute("SELECT version_num FROM alembic_version").fetchone()
    backup.close()
    # One consistent snapshot: every row up to some point, none missing.
    assert 200 <= len(ids) <= at_backup_end and ids == list(range(1, len(ids) + 1))
    assert revision in invoke("db", "upgrade").stdout
    assert not Path(str(copy) + "-wal").exists() and not Path(str(copy) + ".partial").exists()

    # FILE exists: refused, and the copy is untouched; --force overwrites it.
    before = copy.stat().st_mtime_ns
    refused = invoke("db", "backup", "backup.db")
    assert refused.exit_code == 2 and "--force" in one_line(refused.stderr)
    assert copy.stat().st_mtime_ns == before
    assert invoke("db", "backup", "backup.db", "--force").exit_code == 0

    # Restore as the README says: service stopped, the copy back in place, -wal/-shm removed.
    staged = live.with_name("restore.tmp")
    shutil.copyfile(copy, staged)
    os.replace(staged, live)
    for suffix in ("-wal", "-shm"):
        Path(str(live) + suffix).unlink(missing_ok=True)
    assert invoke("events").stdout.strip() == "no events"
    with sqlite3.connect(live) as restored:
        count = restored.execute("SELECT count(*) FROM probe").fetchone()[0]
    restored.close()
    assert count >= len(ids)  # the --force backup was taken after the writer stopped


def test_backup_of_postgresql_points_to_pg_dump(operator: dict[str, str], monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/legwork")
    result = invoke("db", "backup", "backup.db")
    assert result.exit_code == 2
    assert "pg_dump" in one_line(result.stderr)
    assert not (Path.cwd() / "backup.db").exists()


# -- numbers from the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["advise", "--athlete", "1", "--distance", "-5"], "--distance"),
        (["advise", "--athlete", "1", "--distance", "0"], "--distance"),
        (["advise", "--athlete", "0"], "--athlete"),
        (["serve", "--port", "0"], "--port"),
        (["serve", "--threads", "0"], "--threads"),
        (["worker", "--threads", "-1"], "--threads"),
        (["demo", "--weeks", "0"], "--weeks"),
        (["demo", "--port", "70000"], "--port"),
        (["events", "--limit", "0"], "--limit"),
        (["events", "replay", "-3"], "EVENT_IDS"),
        (["runner", "show", "0"], "ATHLETE_ID"),
        (["runner", "massage", "remove", "1", "0"], "SESSION_ID"),
    ],
)
def test_numbers_out_of_range_are_usage_errors(
    args: list[str], option: str, tmp_path: Path, monkeypatch
) -> None:
    # Checked before the app is built: no configuration at all is needed to be told.
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.stderr or option in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "instance").exists()


# -- the runner's units in `advise`, and plain counts -----------------------------------------


def test_advise_speaks_the_runner_s_units(operator: dict[str, str]) -> None:
    assert invoke("db", "upgrade").exit_code == 0
    database = Database(f"sqlite:///{Path.cwd() / 'instance' / 'strava-massage.db'}")
    yesterday = dt.date.today() - dt.timedelta(days=1)
    with database.session() as session:
        session.add(Athlete(id=7, units="mi", backfill_status="done", backfill_runs=1))
        session.flush()
        session.add(
            Activity(
                id=70, athlete_id=7, local_date=yesterday, distance_m=8046.72,
                moving_time_s=2700, sport_type="Run", workout_type=None,
            )
        )  # fmt: skip
        session.commit()
    database.dispose()
    result = invoke("advise", "--athlete", "7", "--distance", "3")
    assert result.exit_code == 0, result.output
    table = result.stdout.split("rule:")[0]
    assert ", 3.0 mi" in table
    assert " km" not in table
    # Yesterday's 5 mi and the imagined 3 mi: 8 mi in the last 7 days.
    assert "last 7 days" in table and "8.0 mi" in table
    assert "none logged" in table
    shown = invoke("runner", "show", "7")
    assert "(1 run)" in shown.stdout and "1 runs" not in shown.stdout


# -- the demo cleans up ---------------------------------------------------------------------------


def test_demo_no_wait_stops_and_removes_its_folder(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    port = str(free_port())
    result = run_script(
        ["demo", "--no-wait", "--weeks", "1", "--port", port], tmp_path, timeout=120,
        TMPDIR=str(temp),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "— Legwork note —" in result.stdout
    assert "servers stopped" in result.stdout
    # No address of a server that is gone by the time it is read.
    assert f"127.0.0.1:{port}/" not in result.stdout and "Open these" not in result.stdout
    assert list(temp.glob("legwork-demo-*")) == []
    assert not (tmp_path / "instance").exists()
