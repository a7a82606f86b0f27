"""The operator's database commands: where the data is, creating a missing PostgreSQL
database, an online SQLite backup, and one line saying why a database cannot be used."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, pool
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from strava_massage.config import ConfigError
from strava_massage.db import BUSY_TIMEOUT, Database


def describe(db: Database) -> str:
    """Where the data is, for messages: the SQLite file's absolute path, or the server's
    database, host and port (never the password)."""
    url = db.engine.url
    if db.dialect == "sqlite":
        if not url.database or url.database == ":memory:":
            return "SQLite, in memory"
        return str(Path(url.database).resolve())
    name = "PostgreSQL" if db.dialect == "postgresql" else db.dialect
    return f"{name} database {url.database} on {_host_port(url)}"


def create_if_missing(db: Database) -> bool:
    """PostgreSQL: create the database when the server says it does not exist, from its
    maintenance database. True if it was created; SQLite files are made on first use."""
    if db.dialect != "postgresql":
        return False
    url = db.engine.url
    try:
        with db.engine.connect():
            return False
    except OperationalError as e:
        if f'database "{url.database}" does not exist' not in str(e.orig):
            raise
    for maintenance in ("postgres", "template1"):
        admin = create_engine(
            url.set(database=maintenance),
            isolation_level="AUTOCOMMIT",
            poolclass=pool.NullPool,
        )
        try:
            with admin.connect() as conn:
                name = admin.dialect.identifier_preparer.quote(str(url.database))
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
            return True
        except OperationalError as e:
            if f'database "{maintenance}" does not exist' in str(e.orig):
                continue
            raise
        except ProgrammingError as e:
            if "already exists" in str(e.orig):  # another process was quicker
                return False
            raise ConfigError(
                f"the database {url.database} does not exist on {_host_port(url)} and user "
                f"{url.username} may not create it: create it (createdb -O {url.username} "
                f"{url.database}), then run db upgrade again"
            ) from None
        finally:
            admin.dispose()
    raise ConfigError(
        f"the database {url.database} does not exist on {_host_port(url)}: create it "
        f"(createdb {url.database}), then run db upgrade again"
    )


def backup(db: Database, target: Path) -> int:
    """Copy the SQLite database to `target` with SQLite's online backup (safe while the
    service writes); returns the copy's size in bytes.

    The copy is written beside `target` and renamed into place once whole and checked, so
    a failed backup never leaves a half-written file under the chosen name.
    """
    if db.dialect != "sqlite" or not db.engine.url.database:
        raise ConfigError("db backup copies the embedded SQLite database only")
    source = Path(db.engine.url.database).resolve()
    if not source.is_file():
        raise ConfigError(f"there is no database at {source} yet: run db upgrade first")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=BUSY_TIMEOUT)
    try:
        dst = sqlite3.connect(partial)
        try:
            # All pages in one step: one read snapshot, while writers carry on in the WAL.
            src.backup(dst)
            # A single self-contained file: restoring it needs no -wal beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
            (check,) = dst.execute("PRAGMA integrity_check").fetchone()
        finally:
            dst.close()
    finally:
        src.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"the backup copy failed its integrity check: {check}")
    os.replace(partial, target)
    return target.stat().st_size


def _host_port(url: URL) -> str:
    """host:port of a server database URL (libpq's defaults when left out)."""
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def database_problem(url: str, error: BaseException) -> str | None:
    """One line saying why the database at `url` could not be used and what to do, or None
    when `error` is not a failure to connect or a missing schema (a real fault keeps its
    traceback)."""
    if not isinstance(error, DBAPIError):
        return None
    if error.statement is not None:
        reason = str(error.orig)
        # SQLite's and PostgreSQL's words for a table that was never created.
        missing = "no such table" in reason or (
            reason.startswith("relation ") and "does not exist" in reason
        )
        if missing:
            return "the database has no tables yet: run `strava-massage db upgrade`"
        return None
    # SQLAlchemy wraps a failed connect in a DBAPIError that carries no statement.
    parsed = make_url(url)
    reason = str(error.orig).strip()
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "").resolve()
        return (
            f"the database file {path} cannot be opened ({reason}): check DATA_DIR or "
            "DATABASE_URL and that the folder exists and is writable"
        )
    where = _host_port(parsed)
    if f'database "{parsed.database}" does not exist' in reason:
        return (
            f"the database {parsed.database} does not exist on {where}: run "
            "`strava-massage db upgrade`, which creates it"
        )
    if "password authentication failed" in reason or "no password supplied" in reason:
        return (
            f"the database server at {where} refused user {parsed.username}: check the user "
            "and password in DATABASE_URL"
        )
    if "refused" in reason.lower():
        return (
            f"the database cannot be reached at {where} (connection refused): check the host "
            "and port in DATABASE_URL and that the server is running"
        )
    # libpq's first line, minus psycopg's "connection failed:" and the repeated address.
    detail = reason.splitlines()[0].removeprefix("connection failed: ")
    detail = " ".join(detail.rpartition(" failed: ")[2].removeprefix("FATAL:").split())
    return f"the database cannot be reached at {where} ({detail}): check DATABASE_URL"
