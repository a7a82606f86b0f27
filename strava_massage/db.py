"""Engine and session lifecycle, plus Alembic migrations run from code."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# How long an SQLite transaction waits for the write lock before "database is locked".
BUSY_TIMEOUT = 30


def make_engine(url: str, **pool: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout, enforced foreign keys and
    transactions that take the write lock when they begin.

    `pool` (size, overflow, timeout) applies to server databases; SQLite keeps SQLAlchemy's.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT})
        turns = _WriteTurns()
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", turns.begin)
        event.listen(engine, "commit", turns.commit)
        event.listen(engine, "rollback", turns.rollback)
        event.listen(engine, "reset", turns.reset)
        return engine
    args = {}
    if "postgresql" in url:
        # Queries read one runner's rows by index; misjudged date windows would make them parallel.
        args["options"] = "-c max_parallel_workers_per_gather=0"
    return create_engine(url, pool_pre_ping=True, connect_args=args, **pool)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    """SQLAlchemy's pysqlite recipe: the driver's own BEGIN handling off (see _WriteTurns).

    WAL lets the web process read while a worker writes. synchronous=NORMAL: a commit is in
    the WAL file before the webhook answers, so a crashed or killed process loses nothing;
    only a power cut of the host may drop the last commits. For durability against host
    failure, run on PostgreSQL.
    """
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT * 1000}")
    cur.close()


class _WriteTurns:
    """SQLite transactions begin with the write lock, and this process's threads queue for it.

    BEGIN IMMEDIATE: a transaction that read first and wrote later could otherwise find, at its
    first write, that another connection wrote meanwhile, and fail at once instead of waiting
    its turn. So a thread must not begin a second transaction while it holds one: it would wait
    on itself.

    SQLite's own wait (the busy timeout) polls, sleeping up to 100 ms between tries, and a
    newcomer can take the lock before those who waited: under a burst, a webhook's INSERT
    waited behind the worker for hundreds of ms while each transaction took one or two. So the
    threads of one process (`serve`: requests and the worker) wait on a lock of their own,
    handed on at each COMMIT or ROLLBACK; other processes still wait through the busy timeout.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def begin(self, conn: Connection) -> None:
        """Wait for this process's turn, then take SQLite's write lock."""
        if self._lock.acquire(timeout=BUSY_TIMEOUT):
            conn.info["write_turn"] = True
        try:
            # On the driver's connection: SQLAlchemy's statement machinery is not needed here.
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        except BaseException:
            self._hand_on(conn.info)
            raise

    def commit(self, conn: Connection) -> None:
        """COMMIT (the driver's own commit then has nothing left to do), and hand on the turn."""
        try:
            conn.connection.dbapi_connection.execute("COMMIT")  # type: ignore[union-attr]
        finally:
            self._hand_on(conn.info)

    def rollback(self, conn: Connection) -> None:
        """ROLLBACK if a transaction is open, and hand on the turn."""
        try:
            dbapi_conn = conn.connection.dbapi_connection
            if dbapi_conn.in_transaction:  # type: ignore[union-attr]
                dbapi_conn.execute("ROLLBACK")  # type: ignore[union-attr]
        finally:
            self._hand_on(conn.info)

    def reset(self, _dbapi_conn: Any, record: Any, _state: Any) -> None:
        """A connection back in the pool holds no turn, however its transaction ended."""
        self._hand_on(record.info)

    def _hand_on(self, info: dict[Any, Any]) -> None:
        if info.pop("write_turn", False):
            self._lock.release()


class Database:
    """The app's engine and session factory, kept in `app.extensions["db"]`."""

    def __init__(self, url: str, **pool: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **pool)
        self.dialect = self.engine.dialect.name
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def dispose(self) -> None:
        """Close every pooled connection (tests, benchmarks, shutdown)."""
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for work outside a request (tasks, commands); rolled back on error."""
        session = self.sessions()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> str:
        """Apply every Alembic migration to this database; returns the revision it is at."""
        from alembic import command
        from alembic.script import ScriptDirectory

        cfg = alembic_config(self.url)
        command.upgrade(cfg, "head")
        return str(ScriptDirectory.from_config(cfg).get_current_head())


def alembic_config(url: str) -> Any:
    """Alembic settings built in code, so an installed package needs no alembic.ini."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % as interpolation; a password may contain it.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def get_db() -> Database:
    """The current app's database."""
    db: Database = current_app.extensions["db"]
    return db


def get_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = get_db().sessions()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    """Close the request's session, if it opened one."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    """Attach the database to the app."""
    cfg = app.config
    pool = {
        "pool_size": cfg["DB_POOL_SIZE"],
        "max_overflow": cfg["DB_MAX_OVERFLOW"],
        "pool_timeout": cfg["DB_POOL_TIMEOUT"],
    }
    app.extensions["db"] = Database(cfg["DATABASE_URL"], **pool)
    app.teardown_appcontext(_close_session)


def insert_for(dialect: str, table: Any) -> Any:
    """An INSERT into `table` that takes ON CONFLICT clauses: PostgreSQL's, else SQLite's."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
