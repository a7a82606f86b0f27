"""What the benchmarks share: free ports and throwaway PostgreSQL databases."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator

# The machine's servers (see the README's Tests section); each run makes its own database.
POSTGRES = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_name(prefix: str) -> str:
    """A name of letters, digits and underscores (huey drops other characters from queues)."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


@contextlib.contextmanager
def fresh_postgres(name: str) -> Iterator[str]:
    """A new, empty PostgreSQL database; yields its SQLAlchemy URL and drops it afterwards."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://{POSTGRES.split('://', 1)[1]}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            # FORCE: a process that did not stop in time must not keep the database alive.
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))
