"""Issue 8 item 10: on SQLite, concurrent writers of one process wait their turn and all succeed (no
"database is locked" however long the queue), and a writer of another process is waited for."""

from __future__ import annotations

import asyncio

import pytest
from shared.db import Database
from sqlalchemy import text


@pytest.mark.parametrize("busy_timeout_ms", [50])
async def test_issue8_10_a_backlog_of_sqlite_writers_waits_in_turn_and_every_one_succeeds(tmp_path, busy_timeout_ms):
    # A busy timeout far shorter than the backlog: without the process's FIFO queue, writers racing for
    # BEGIN IMMEDIATE in their threads give up with "database is locked".
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", sqlite_busy_timeout_ms=busy_timeout_ms)
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE t (n INTEGER)"))

        async def writer(n: int) -> None:
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                await asyncio.sleep(0.01)   # work while holding the write lock (an await, like a handler's)

        await asyncio.gather(*(writer(n) for n in range(40)))
        async with db.transaction() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 40
    finally:
        await db.dispose()
