"""Engine and session lifecycle, plus Alembic migrations run from code."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ClauseElement

if TYPE_CHECKING:
    import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


Role = Literal["app", "jobs", "intake"]


def make_engine(url: str, *, role: Role = "app", **pool: Any) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and enforced foreign keys.

    `pool` (size, overflow, timeout) applies to server databases; SQLite keeps SQLAlchemy's.
    `role` "jobs" or "intake" makes a PostgreSQL engine for the worker's bookkeeping or the
    webhook's one statement (see Database.jobs and Database.intake).
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Every query reads one runner's few rows by index. PostgreSQL misjudges how many rows a long
    # history holds in a date window (it treats runner and date as independent) and goes
    # parallel, which costs ten times the query itself: benchmarks/growth.py, 2.5x at 100k runs.
    options = ["-c max_parallel_workers_per_gather=0"]
    if role == "jobs":
        options.append("-c synchronous_commit=off")
    args = {"options": " ".join(options)} if "postgresql" in url else {}
    if role == "intake":
        # One statement a request, its own transaction: no BEGIN and COMMIT round trips.
        pool["isolation_level"] = "AUTOCOMMIT"
    # A job that meets a dropped connection fails one attempt and is retried, and the intake
    # retries its statement once on a fresh connection: neither pays a ping per checkout.
    return create_engine(url, pool_pre_ping=role == "app", connect_args=args, **pool)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL lets the web process read while a worker writes.

    synchronous=NORMAL: a commit is in the WAL file before the webhook answers, so a crashed or
    killed process loses nothing; only a power cut of the host may drop the last commits (an
    fsync per commit would halve the webhook's throughput). For durability against host
    failure, run on PostgreSQL.
    """
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class SqliteWriteLock:
    """Queue SQLite writers of every thread and process on a lock that wakes them at once.

    SQLite has one writer at a time, and a connection that finds the database locked polls
    with sleeps of up to 100 ms, which is what a burst of webhooks would see in its slowest
    requests. A thread lock orders this process's writers; an flock on a file beside the
    database orders the processes (the kernel wakes the next one as soon as it is released).
    """

    def __init__(self, url: str) -> None:
        path = url.split("///", 1)[-1]
        self._threads = threading.Lock()
        self._path = None if path in ("", ":memory:") else path + ".lock"
        self._fd: int | None = None

    def __enter__(self) -> None:
        """Take the thread lock, then the file lock."""
        self._threads.acquire()
        if self._path is not None:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        """Release both, file lock first."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


class Database:
    """The app's engine and session factory, kept in `app.extensions["db"]`."""

    def __init__(self, url: str, **pool: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **pool)
        self.dialect = self.engine.dialect.name
        self._pool = pool
        self._engines: dict[Role, Engine] = {}
        self._engines_lock = threading.Lock()
        self._pinned = threading.local()  # .conn: this thread's jobs connection (see pinned)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.write_lock: AbstractContextManager[Any] = (
            SqliteWriteLock(url) if url.startswith("sqlite") else nullcontext()
        )

    @property
    def jobs(self) -> Engine:
        """The engine for the worker's bookkeeping: claims, rate budget, ledger, notes, outcomes.

        On PostgreSQL its commits do not wait for the WAL to reach disk and it skips the
        liveness ping: every job is safe to repeat, so a database crash costs at most a job
        done again, while the webhook intake keeps durable commits (nothing acknowledged is
        lost). About 1 ms an event on this machine (the pipeline benchmark). SQLite needs no
        second engine: in WAL mode with synchronous=NORMAL its commits never wait for a flush.
        """
        return self._engine("jobs")

    @property
    def intake(self) -> Engine:
        """The engine for the webhook's intake: on PostgreSQL, autocommit and no ping.

        Each event is stored by one statement that commits on its own (durably), so a request
        costs one round trip instead of five (ping, BEGIN, two statements, COMMIT).
        """
        return self._engine("intake")

    def _engine(self, role: Role) -> Engine:
        """The PostgreSQL engine for `role`, made on first use; SQLite's one engine otherwise."""
        if self.dialect != "postgresql":
            return self.engine
        with self._engines_lock:
            if role not in self._engines:
                self._engines[role] = make_engine(self.url, role=role, **self._pool)
            return self._engines[role]

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A jobs connection on which each statement commits on its own.

        For the worker's statements that are complete by themselves: on PostgreSQL a BEGIN
        and a COMMIT around one statement are two more round trips.
        """
        with self._jobs_connection(autocommit=True) as conn:
            yield conn

    @contextmanager
    def driver(self, *, autocommit: bool = False) -> Iterator[Driver]:
        """PostgreSQL: a jobs connection's psycopg connection, for the worker's hot statements.

        A psycopg error leaves as SQLAlchemy's (so OperationalError still means "retry"), and
        a connection the server closed is dropped from the pool. Whatever is left uncommitted
        is rolled back when the block ends.
        """
        with self._jobs_connection(autocommit) as conn, _driver(conn) as pg:
            yield pg

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """PostgreSQL: the jobs connections this thread asks for in the block are one.

        A task checks a connection out once instead of at each step (claim, budget, ledger,
        finish): each checkout cost about 60 µs of pool and SQLAlchemy work, 0.3 ms an event
        (benchmarks/README.md). The connection stays checked out, idle, while the task calls
        Strava: a pool of one connection per worker thread still suffices.
        """
        if self.dialect != "postgresql" or getattr(self._pinned, "conn", None) is not None:
            yield
            return
        with self.jobs.connect() as conn:
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None

    @contextmanager
    def _jobs_connection(self, autocommit: bool) -> Iterator[Connection]:
        """The thread's pinned connection if it has one free, else one from the pool."""
        conn: Connection | None = getattr(self._pinned, "conn", None)
        if conn is None or conn.invalidated:
            with self.jobs.connect() as fresh:
                yield fresh.execution_options(isolation_level="AUTOCOMMIT") if autocommit else fresh
            return
        raw: Any = conn.connection.driver_connection
        self._pinned.conn = None  # a use nested in this one takes a connection of its own
        raw.autocommit = autocommit
        try:
            yield conn
        finally:
            self._pinned.conn = conn if _idle_again(conn, raw) else None

    def dispose(self) -> None:
        """Close every pooled connection (tests, benchmarks, shutdown)."""
        self.engine.dispose()
        for engine in self._engines.values():
            engine.dispose()

    @contextmanager
    def session(self, *, jobs: bool = False) -> Iterator[Session]:
        """A session for work outside a request (tasks, commands); rolled back on error.

        `jobs` runs it on the jobs engine, for the worker's bookkeeping.
        """
        session = self.sessions(bind=self.jobs) if jobs else self.sessions()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> None:
        """Apply every Alembic migration to this database."""
        from alembic import command

        command.upgrade(alembic_config(self.url), "head")


class Driver:
    """Core statements compiled once, run on psycopg's own cursor (the worker on PostgreSQL).

    The statements stay SQLAlchemy expressions; what this skips is the work SQLAlchemy does
    again at every execution (cache key, parameters, result rows): 50 to 130 µs of CPU a
    statement, twice what psycopg itself spends (benchmarks/README.md). Parameters go to
    psycopg as they are, so a statement whose values need SQLAlchemy's conversion (JSON, say)
    does not belong here. Rows are named tuples. Inside `pipeline()`, statements sent before
    any of their rows are read share one round trip.
    """

    def __init__(self, raw: psycopg.Connection[Any], dialect: Any) -> None:
        self.raw = raw
        self.dialect = dialect

    def send(self, statement: ClauseElement, params: dict[str, Any]) -> psycopg.Cursor[Any]:
        """Execute (in a pipeline: queue) a statement; its rows are on the returned cursor."""
        sql, fixed = _compiled(statement, self.dialect)
        cursor = self.raw.cursor(row_factory=_named_tuples())
        cursor.execute(sql, {**fixed, **params} if fixed else params)
        return cursor

    def pipeline(self) -> AbstractContextManager[Any]:
        """Send what follows without waiting for each answer; leaving it waits for them all."""
        return self.raw.pipeline()

    def commit(self) -> None:
        """Commit (in a pipeline: queue the COMMIT)."""
        self.raw.commit()


def _named_tuples() -> Any:
    """psycopg's row factory of named tuples, imported on first use.

    Measured: psycopg imported at the top of this module, ahead of the rest of the app, raised
    a process's peak RSS by about 9 MB (120.7 to 130.3 MB for an app on SQLite); imported on
    first use, the peak stays as it was.
    """
    from psycopg.rows import namedtuple_row

    return namedtuple_row


@contextmanager
def _driver(conn: Connection) -> Iterator[Driver]:
    """The Driver of a PostgreSQL connection, its errors raised as SQLAlchemy's."""
    import psycopg

    raw: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
    try:
        yield Driver(raw, conn.dialect)
    except psycopg.Error as e:
        gone = raw.closed or raw.pgconn.status == psycopg.pq.ConnStatus.BAD
        if gone:
            conn.invalidate(e)
        raise DBAPIError.instance(
            None, None, e, psycopg.Error, connection_invalidated=gone, dialect=conn.dialect
        ) from e


def _idle_again(conn: Connection, raw: Any) -> bool:
    """Leave a pinned connection as the pool hands one out: no transaction, no autocommit.

    False if it is unusable (the server closed it, or the rollback failed): it is invalidated,
    and the next step of the task takes one from the pool.
    """
    from psycopg.pq import TransactionStatus

    if conn.invalidated:
        return False
    try:
        if conn.in_transaction():  # a statement through SQLAlchemy began one (budget rows)
            conn.rollback()
        if raw.info.transaction_status != TransactionStatus.IDLE:  # the Driver left one open
            raw.rollback()
        raw.autocommit = False
    except Exception as e:  # whatever broke it, it is not reused
        conn.invalidate(e)
        return False
    return True


def autocommit_rows(conn: Connection, statement: Any, params: dict[str, Any]) -> list[Any]:
    """The rows of a prebuilt statement run on a `Database.autocommit` connection.

    On PostgreSQL through the Driver: with each statement its own transaction, there is no
    transaction of SQLAlchemy's to keep track of.
    """
    if conn.dialect.name != "postgresql":
        result = conn.execute(statement, params)
        return list(result) if result.returns_rows else []
    with _driver(conn) as pg:
        cursor = pg.send(statement, params)
        return cursor.fetchall() if cursor.description else []


_COMPILED: dict[tuple[ClauseElement, str], tuple[str, dict[str, Any]]] = {}


def _compiled(statement: ClauseElement, dialect: Any) -> tuple[str, dict[str, Any]]:
    """A statement's SQL for `dialect` and the values of its literal parameters, made once."""
    key = (statement, dialect.name)
    found = _COMPILED.get(key)
    if found is None:
        compiled: Any = statement.compile(dialect=dialect)  # an SQLCompiler
        fixed = {
            compiled.bind_names[bind]: bind.effective_value
            for bind in compiled.binds.values()
            if not bind.required
        }
        found = _COMPILED[key] = (str(compiled), fixed)
    return found


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
