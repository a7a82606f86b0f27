"""SQLite's single writer: the threads of one process take turns at it, and always hand it on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from strava_massage.db import Database


def _database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'turns.db'}")
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE counted (thread INTEGER, n INTEGER)"))
    return db


def test_threads_writing_at_once_all_get_their_turn(tmp_path: Path) -> None:
    db = _database(tmp_path)
    waits: list[float] = []

    def write(thread: int) -> None:
        for n in range(25):
            started = time.perf_counter()
            with db.engine.begin() as conn:
                waits.append(time.perf_counter() - started)
                conn.execute(text("INSERT INTO counted VALUES (:t, :n)"), {"t": thread, "n": n})

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with db.engine.begin() as conn:
        assert conn.scalar(text("SELECT count(*) FROM counted")) == 8 * 25
    # Each waited only for the transactions queued before it, never SQLite's 100 ms naps.
    assert max(waits) < 2.0
    db.dispose()


def test_the_turn_is_handed_on_however_a_transaction_ends(tmp_path: Path) -> None:
    db = _database(tmp_path)
    with db.session() as session:  # a read, closed without a commit: rolled back
        session.execute(text("SELECT count(*) FROM counted"))
    try:
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO counted VALUES (1, 1)"))
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    conn = db.engine.connect()
    conn.execute(text("SELECT 1"))
    conn.close()  # returned to the pool with its transaction open

    done = threading.Event()

    def write() -> None:
        with db.engine.begin() as other:
            other.execute(text("INSERT INTO counted VALUES (2, 2)"))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert done.wait(5), "a transaction's end kept the write turn"
    writer.join()
    with db.engine.begin() as check:
        assert check.scalar(text("SELECT count(*) FROM counted")) == 1
    db.dispose()
