"""Fixtures for the bus tests: a probe domain (probes written by a producer, effects by a consumer)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from shared.bus import Bus
from shared.db import Database, make_base
from shared.infra import InfraBase
from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

ProbeBase = make_base()


class Probe(ProbeBase):
    """The producer's domain row: written in the same transaction as its event."""

    __tablename__ = "probes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)


class Effect(ProbeBase):
    """The consumer's effect: one row per applied event (no unique key, so duplicates would show)."""

    __tablename__ = "effects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(64))


async def create_tables(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(InfraBase.metadata.create_all)
        await conn.run_sync(ProbeBase.metadata.create_all)


async def count_effects(db: Database) -> tuple[int, int]:
    """(rows, distinct seqs) of the effects table."""
    async with db.transaction() as session:
        rows = (await session.execute(select(func.count(Effect.id)))).scalar_one()
        distinct = (await session.execute(select(func.count(func.distinct(Effect.seq))))).scalar_one()
    return rows, distinct


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await create_tables(database)
    yield database
    await database.dispose()


@pytest.fixture
async def bus(nats_server) -> AsyncIterator[Bus]:
    connected = Bus(nats_server.url, "test")
    await connected.connect(retry_forever=False)
    yield connected
    await connected.drain()
