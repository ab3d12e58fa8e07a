"""Issue 7 §4: honest answers under a database outage; refusals are not errors. §7: retention, partial index."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from litestar import get
from litestar.di import NamedDependency
from litestar.testing import AsyncTestClient
from shared.clock import FixedClock
from shared.db import Database
from shared.errors import Forbidden, NotFound
from shared.infra import OutboxRow, ProcessedEvent, Timer
from shared.retention import RetentionJob
from shared.service import ServiceSpec, create_service_app
from shared.testing import make_settings, staff_headers
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import Probe, ProbeBase

TOKEN = {"Authorization": "Bearer dev-token"}
T0 = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


@get("/probes")
async def list_probes(session: NamedDependency[AsyncSession]) -> list[int]:
    return list((await session.execute(select(Probe.seq))).scalars())


@get("/refuse/{code:int}")
async def refuse(code: int) -> None:
    raise {403: Forbidden("not yours"), 404: NotFound("no such probe")}[code]


spec = ServiceSpec(name="omega", metadata=ProbeBase.metadata, api_routes=[list_probes, refuse], create_all=True,
                   uses_bus=False)


def server_logs(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_issue7_s4_database_outage_is_503_with_retry_after_and_one_log_line(database_url, caplog):
    app = create_service_app(spec, settings=make_settings("omega", database_url=database_url), background=False)
    async with AsyncTestClient(app) as client:
        assert (await client.get("/api/omega/probes", headers=TOKEN)).status_code == 200
        db = Database(database_url)  # the test's own connection (the app's engine lives on another loop)
        async with db.engine.begin() as conn:  # the table goes away (a restore, a migration gone wrong)
            await conn.execute(text("ALTER TABLE probes RENAME TO probes_away"))
        caplog.clear()
        for _ in range(20):
            response = await client.get("/api/omega/probes", headers=TOKEN)
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
        lines = server_logs(caplog)
        assert len(lines) == 1 and "unavailable" in lines[0].getMessage() and not lines[0].exc_info
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE probes_away RENAME TO probes"))
        assert (await client.get("/api/omega/probes", headers=TOKEN)).status_code == 200
        lines = server_logs(caplog)
        assert len(lines) == 2 and "available again" in lines[1].getMessage()
        await db.dispose()


@pytest.mark.postgres
async def test_issue7_s4_postgres_refusing_connections_is_503_not_500(postgres_url, caplog):
    from shared.testing import _pg_admin, postgres_admin_url

    app = create_service_app(spec, settings=make_settings("omega", database_url=postgres_url), background=False)
    name = postgres_url.rsplit("/", 1)[1].split("?")[0]
    admin = postgres_admin_url()
    async with AsyncTestClient(app) as client:
        assert (await client.get("/api/omega/probes", headers=TOKEN)).status_code == 200
        await _pg_admin(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await _pg_admin(admin, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        try:
            caplog.clear()
            for _ in range(10):
                response = await client.get("/api/omega/probes", headers=TOKEN)
                assert response.status_code == 503 and response.headers["retry-after"] == "5", response.text
            assert len(server_logs(caplog)) == 1
        finally:
            await _pg_admin(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await client.get("/api/omega/probes", headers=TOKEN)).status_code == 200


async def test_issue7_s4_refusals_are_not_logged_as_errors(tmp_path, caplog):
    class AccessDenied(Exception):  # like the gateway's page refusals: no status_code of its own
        pass

    @get("/denied")
    async def denied() -> None:
        raise AccessDenied()

    from litestar import Response

    page_spec = ServiceSpec(name="omega", metadata=ProbeBase.metadata, api_routes=[list_probes, refuse],
                            public_routes=[denied], create_all=True, uses_bus=False,
                            app_options={"exception_handlers": {
                                AccessDenied: lambda request, exc: Response("no access", status_code=403)}})
    app = create_service_app(page_spec, settings=make_settings("omega", database_url=f"sqlite+aiosqlite:///"
                                                                f"{tmp_path / 'o.db'}"), background=False)
    async with AsyncTestClient(app) as client:
        caplog.clear()
        assert (await client.get("/api/omega/probes")).status_code == 401
        assert (await client.get("/api/omega/refuse/403", headers=TOKEN)).status_code == 403
        assert (await client.get("/api/omega/refuse/404", headers=TOKEN)).status_code == 404
        assert (await client.get("/api/omega/no-such-route", headers=TOKEN)).status_code == 404
        assert (await client.get("/api/omega/refuse/x", headers=TOKEN)).status_code in (400, 404, 422)
        assert (await client.get("/denied")).status_code == 403
    assert [r.getMessage() for r in server_logs(caplog)] == []


async def test_issue7_s7_retention_prunes_sent_outbox_processed_events_and_settled_timers_in_batches(db):
    clock = FixedClock(T0)
    old, recent = T0 - timedelta(days=15), T0 - timedelta(days=13)
    async with db.transaction() as session:
        for i in range(7):
            session.add(OutboxRow(event_id=f"old-sent-{i}", subject="s", payload=b"", headers={},
                                  created_at=old, published_at=old))
            session.add(ProcessedEvent(consumer="c", event_id=f"old-{i}", processed_at=old))
            session.add(Timer(kind="k", key=f"fired-{i}", due_at=old, created_at=old, fired_at=old, attempts=0))
        session.add(OutboxRow(event_id="old-unsent", subject="s", payload=b"", headers={}, created_at=old))
        session.add(OutboxRow(event_id="recent-sent", subject="s", payload=b"", headers={}, created_at=recent,
                              published_at=recent))
        session.add(ProcessedEvent(consumer="c", event_id="recent", processed_at=recent))
        session.add(ProcessedEvent(consumer="d", event_id="old-0", processed_at=old))
        session.add(Timer(kind="k", key="cancelled-old", due_at=old, created_at=old, cancelled_at=old, attempts=0))
        session.add(Timer(kind="k", key="pending-old", due_at=old, created_at=old, attempts=0))
        session.add(Timer(kind="k", key="fired-recent", due_at=recent, created_at=recent, fired_at=recent,
                          attempts=0))

    job = RetentionJob(db, days=14, batch=3, clock=clock)
    assert await job.prune() == {"outbox": 7, "processed_events": 8, "timers": 8}
    async with db.transaction() as session:
        assert set((await session.execute(select(OutboxRow.event_id))).scalars()) == {"old-unsent", "recent-sent"}
        assert set((await session.execute(select(ProcessedEvent.event_id))).scalars()) == {"recent"}
        assert set((await session.execute(select(Timer.key))).scalars()) == {"pending-old", "fired-recent"}
    clock.advance(timedelta(days=2))
    assert await job.prune() == {"outbox": 1, "processed_events": 1, "timers": 1}
    assert await job.prune() == {"outbox": 0, "processed_events": 0, "timers": 0}


async def test_issue7_s7_infra_migration_makes_dead_letters_unique_and_the_pending_timers_index_partial(
        database_url):
    from alembic import command

    from shared import migrate

    db = Database(database_url)
    cfg = migrate.alembic_config("content", database_url)

    def to(revision: str):
        def run(connection) -> None:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
        return run

    async with db.engine.begin() as conn:
        await conn.run_sync(to("0001"))
        for i, (consumer, event_id) in enumerate([("c", "e1"), ("c", "e1"), ("c", "e1"), ("c", "e2"), ("d", "e1"),
                                                  ("c", None), ("c", None)]):
            await conn.execute(text(
                "INSERT INTO dead_letters (consumer, subject, event_id, deliveries, reason, payload, failed_at) "
                "VALUES (:c, 's', :e, :n, 'r', :p, :t)"), {"c": consumer, "e": event_id, "n": i + 1, "p": b"",
                                                          "t": T0})
    async with db.engine.begin() as conn:
        await conn.run_sync(to("head"))
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT consumer, event_id, deliveries FROM dead_letters "
                                        "ORDER BY id"))).all()
        assert [(c, e, n) for c, e, n in rows if e in ("e1", "e2")] == [("c", "e1", 3), ("c", "e2", 4),
                                                                       ("d", "e1", 5)]
        assert len(rows) == 5  # the two without an id got one each
        if db.dialect == "postgresql":
            indexdef = (await conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_timers_pending'"))).scalar_one()
        else:
            indexdef = (await conn.execute(text(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_timers_pending'"))).scalar_one()
        assert "WHERE" in indexdef and "cancelled_at IS NULL" in indexdef and "fired_at IS NULL" in indexdef
        count = (await conn.execute(select(func.count()).select_from(Timer))).scalar_one()
        assert count == 0
    await db.dispose()


async def test_issue7_s3_transient_database_failures_are_told_from_a_message_own_failure(database_url, tmp_path):
    """Real errors from the real database: outage-like ones are transient, data and code errors are not."""
    from shared.errors import is_transient

    db = Database(database_url)

    async def error_of(sql: str) -> Exception:
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text(sql))
        except Exception as exc:
            return exc
        raise AssertionError(f"{sql} did not fail")

    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO t (id) VALUES (1)"))
    assert not is_transient(await error_of("INSERT INTO t (id) VALUES (1)"))       # unique key: the data
    assert not is_transient(await error_of("SELEC 1"))                             # a bug in the SQL
    assert is_transient(await error_of("SELECT * FROM t_renamed_away"))             # a table not there now
    if db.dialect == "postgresql":
        for code in ("40001", "40P01", "55P03", "57014", "57P01", "53300"):  # serialization, deadlock, lock and
            raised = f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{code}'; END $$"  # statement timeouts,
            assert is_transient(await error_of(raised)), code                        # shutdown, too many clients
        assert not is_transient(await error_of("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '22P02'; END $$"))
    else:
        import sqlite3

        path = database_url.split("///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            other = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc) and is_transient(exc)
            else:
                raise AssertionError("not locked")
            other.close()
        finally:
            holder.rollback()
            holder.close()
    assert not is_transient(FileNotFoundError(2, "no such attachment"))
    assert is_transient(ConnectionRefusedError(111, "Connection refused"))
    await db.dispose()


async def test_issue7_s7_a_dead_letter_older_than_retention_is_not_replayed(tmp_path):
    from shared.infra import DeadLetter

    clock = FixedClock(T0)
    bus_spec = ServiceSpec(name="omega", metadata=ProbeBase.metadata, create_all=True)
    url = f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"
    app = create_service_app(bus_spec, settings=make_settings("omega", database_url=url, nats_url="nats://127.0.0.1:9"),
                             clock=clock, background=False)
    lead = staff_headers("lead", "lead", app.state.settings)
    async with AsyncTestClient(app) as client:
        db = Database(url)
        async with db.transaction() as session:
            for event_id, age in (("old", 14), ("recent", 12)):
                session.add(DeadLetter(consumer="c", subject="system.probe.recorded.v1", event_id=event_id,
                                       deliveries=5, reason="r", payload=b"{}", failed_at=T0 - timedelta(days=age)))
        await db.dispose()
        letters = {d["event_id"]: d["id"] for d in (await client.get("/api/omega/ops/dead-letters", headers=lead)).json()}
        old = await client.post(f"/api/omega/ops/dead-letters/{letters['old']}/replay", headers=lead)
        assert old.status_code == 409 and "older than 13 days" in old.json()["detail"]
        recent = await client.post(f"/api/omega/ops/dead-letters/{letters['recent']}/replay", headers=lead)
        assert recent.status_code == 409 and "NATS is not connected" in recent.json()["detail"]  # only NATS is away


async def test_issue7_s3_the_scheduler_waiting_out_an_outage_makes_readiness_503_naming_it(tmp_path, caplog):
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    app = create_service_app(spec, settings=make_settings("omega", database_url=url))
    async with AsyncTestClient(app) as client:
        from shared.testing import eventually

        async def ready() -> bool:
            return (await client.get("/health/ready")).status_code == 200

        await eventually(ready, message="ready")
        db = Database(url)
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE timers RENAME TO timers_away"))

        async def unready() -> dict | None:
            response = await client.get("/health/ready")
            return response.json() if response.status_code == 503 else None

        body = await eventually(unready, message="503 naming the scheduler")
        assert body["failing"] == ["scheduler"] and body["checks"]["database"] is True
        assert "timers" in body["loops"]["scheduler"]["error"]
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE timers_away RENAME TO timers"))
        await eventually(ready, timeout=60, message="ready again")
        await db.dispose()
    lines = [r for r in caplog.records if r.name == "shared.timers"]
    assert len(lines) == 1 and "retrying until it passes" in lines[0].getMessage()


async def test_issue7_s3_a_service_loop_of_its_own_is_supervised_and_named_while_it_cannot_run(tmp_path):
    import asyncio

    from shared.testing import eventually

    healthy = asyncio.Event()

    async def digest() -> None:  # a future loop (say, a push sender) that crashes until its cause is fixed
        if not healthy.is_set():
            raise RuntimeError("push provider rejected our key")
        await asyncio.Event().wait()

    looping = ServiceSpec(name="omega", metadata=ProbeBase.metadata, create_all=True, uses_bus=False,
                          loops=lambda rt: {"digest": digest})
    url = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    app = create_service_app(looping, settings=make_settings("omega", database_url=url))
    async with AsyncTestClient(app) as client:
        async def unready() -> dict | None:
            response = await client.get("/health/ready")
            return response.json() if response.status_code == 503 else None

        body = await eventually(unready, message="503 naming the loop")
        assert body["failing"] == ["digest"] and body["loops"]["digest"]["state"] == "restarting"
        assert "push provider rejected our key" in body["loops"]["digest"]["error"]
        healthy.set()

        async def ready() -> bool:
            return (await client.get("/health/ready")).status_code == 200

        await eventually(ready, message="ready once the loop runs")


async def test_issue7_s3_readiness_shows_the_oldest_unsent_outbox_event_age(database_url):
    clock = FixedClock(T0)
    bus_spec = ServiceSpec(name="omega", metadata=ProbeBase.metadata, create_all=True)
    settings = make_settings("omega", database_url=database_url, nats_url="nats://127.0.0.1:9")
    app = create_service_app(bus_spec, settings=settings, clock=clock)
    async with AsyncTestClient(app) as client:
        db = Database(database_url)
        async with db.transaction() as session:  # written while NATS is away: they wait in the outbox
            for i, age in enumerate((90, 30)):
                session.add(OutboxRow(event_id=f"e{i}", subject="system.probe.recorded.v1", payload=b"{}",
                                      headers={}, created_at=T0 - timedelta(seconds=age)))
            session.add(OutboxRow(event_id="sent", subject="system.probe.recorded.v1", payload=b"{}", headers={},
                                  created_at=T0 - timedelta(hours=1), published_at=T0 - timedelta(hours=1)))
        await db.dispose()
        response = await client.get("/health/ready")
        body = response.json()
        assert response.status_code == 503 and body["checks"] == {"database": True, "nats": False}
        assert body["outbox"] == {"unsent": 2, "oldest_unsent_age_seconds": 90.0}
        assert body["consumers"] == {}


def test_issue7_s7_retention_and_dead_letter_settings_have_safe_defaults_and_bounds() -> None:
    from shared.settings import Settings

    settings = Settings.from_env("clients", {})
    assert (settings.retention_days, settings.dead_letter_after_seconds, settings.max_deliver) == (14, 60.0, 5)
    assert Settings.from_env("clients", {"ZABOTA_RETENTION_DAYS": "30"}).retention_days == 30
    with pytest.raises(ValueError, match="ZABOTA_RETENTION_DAYS must be at least 1"):
        Settings.from_env("clients", {"ZABOTA_RETENTION_DAYS": "0"})  # shorter than a redelivery could take
