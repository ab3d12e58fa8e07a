"""Issue 7 §2 and §4: no lost updates between a request and the scheduler, and honest answers when
the same payment races itself.

Two real concurrent transactions on PostgreSQL: every writer of a deal takes its row lock first; the
scheduler's timer handlers never wait for a deal (a deal another transaction holds makes the timer
wait for a later round, `timers.Busy`), while a request waits for a timer the scheduler is running.
"Blocked" is observed in `pg_stat_activity` (a bound on waiting, not a timing assumption).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC

import msgspec
import pytest
from clients import services
from clients.models import Task
from clients.schemas import PaymentIn
from shared.auth import Actor
from shared.infra import Timer
from shared.testing import eventually
from shared.timers import Scheduler
from sqlalchemy import select, text

from .conftest import Api, _api, local, payment
from .test_deals import launched_deal

LEAD = Actor(login="boss", role="lead")
INTEGRATION = Actor(login="provider", role="integration")


@pytest.fixture
async def pg_api(postgres_url, clock) -> AsyncIterator[Api]:
    async for a in _api(postgres_url, clock):
        yield a


def ctx_of(runtime, session, actor: Actor = INTEGRATION) -> services.Ctx:
    return services.Ctx(session, runtime.clock, runtime.settings, actor, runtime.scheduler.handlers)


async def someone_waits_for_a_lock(runtime) -> None:
    async def waiting() -> bool:
        async with runtime.db.engine.connect() as conn:
            return (await conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"))).scalar_one() > 0

    await eventually(waiting, timeout=20, message="a transaction waiting for the deal's lock")


async def scheduler_holding(runtime, kind: str) -> tuple[Scheduler, asyncio.Event, asyncio.Event]:
    """A scheduler whose `kind` handler does its work and then keeps its transaction open until released."""
    held, release = asyncio.Event(), asyncio.Event()
    real = runtime.scheduler.handlers[kind]

    async def holding(session, timer) -> None:
        await real(session, timer)
        held.set()
        await release.wait()

    return Scheduler(runtime.db, {**runtime.scheduler.handlers, kind: holding}, clock=runtime.clock), held, release


async def renewal_body(api: Api, deal_id: str, paid_at) -> PaymentIn:
    return msgspec.convert(payment("late-renewal", paid_at=paid_at) | {"deal_id": deal_id}, PaymentIn, strict=False)


async def assert_renewed_not_lost(api: Api, deal_id: str) -> None:
    deal = await api.deal(deal_id)
    assert deal["stage"] == "project_launched" and deal["period"]["no"] == 2 and deal["lost_at"] is None
    lost = await api.events("clients.deal.lost", deal_id=deal_id)
    undone = {e.lost_event_id for e in await api.events("clients.deal.loss_undone", deal_id=deal_id)}
    assert len(await api.events("clients.deal.renewed", deal_id=deal_id)) == 1
    assert all(e.event_id in undone for e in lost), "a DealLost without its undo beside a DealRenewed"


async def test_cl13_late_renewal_waits_for_the_running_auto_loss_timer_and_undoes_it(pg_api) -> None:
    api = pg_api
    runtime = api.app.state.runtime
    deal_id = await launched_deal(api)
    api.clock.set(local(2026, 4, 8, 23, 0))
    await api.run_due()  # everything before the loss moment (renewal task, its deadline)
    api.clock.set(local(2026, 4, 9, 0, 30))  # the CL-13 loss (09.04 00:00) is due
    body = await renewal_body(api, deal_id, local(2026, 4, 8, 20, 0))  # paid before the loss, arriving late

    async def race() -> None:
        scheduler, held, release = await scheduler_holding(runtime, "clients.auto_loss")
        firing = asyncio.create_task(scheduler.fire_batch())
        await held.wait()  # the timer made the deal lost; its transaction is still open

        async def pay() -> bool:
            async with runtime.db.transaction() as session:
                return (await services.record_payment(ctx_of(runtime, session), body)).created

        paying = asyncio.create_task(pay())
        await someone_waits_for_a_lock(runtime)
        release.set()
        await firing
        assert await paying

    api.in_app(race)
    await assert_renewed_not_lost(api, deal_id)
    [lost] = await api.events("clients.deal.lost", deal_id=deal_id)
    [undone] = await api.events("clients.deal.loss_undone", deal_id=deal_id)
    assert undone.lost_event_id == lost.event_id


async def test_cl13_auto_loss_timer_gives_way_to_a_renewal_holding_the_deal(pg_api) -> None:
    api = pg_api
    runtime = api.app.state.runtime
    deal_id = await launched_deal(api)
    api.clock.set(local(2026, 4, 8, 23, 0))
    await api.run_due()
    api.clock.set(local(2026, 4, 9, 0, 30))
    body = await renewal_body(api, deal_id, local(2026, 4, 8, 20, 0))

    async def race() -> None:
        async with runtime.db.transaction() as session:
            deal = await services.get_deal(session, deal_id)  # the request holds the deal
            assert deal.stage == "project_launched"
            # The scheduler in its own transaction: it must neither wait nor count a failure.
            assert await asyncio.wait_for(runtime.scheduler.fire_batch(), 20) == 0
            await services.record_payment(ctx_of(runtime, session), body)
        await runtime.scheduler.run_due()
        async with runtime.db.transaction() as session:
            timers = (await session.execute(select(Timer).where(Timer.key.like(f"deal:{deal_id}:auto_loss:%"))
                                            .order_by(Timer.due_at))).scalars().all()
            assert all(t.attempts == 0 and t.last_error is None for t in timers)

    api.in_app(race)
    await assert_renewed_not_lost(api, deal_id)
    assert await api.events("clients.deal.lost", deal_id=deal_id) == []


async def first_call_due_at_11(api: Api) -> tuple[str, str]:
    api.clock.set(local(2026, 3, 2, 21, 0))
    deal = await api.pay(payment("night", paid_at=local(2026, 3, 2, 20, 30)))  # due 03.03 11:00 (CL-3)
    [task] = deal["tasks"]
    assert task["due_at"] == local(2026, 3, 3, 11, 0).astimezone(UTC).isoformat()
    api.clock.set(local(2026, 3, 3, 11, 0, 5))  # the breach timer is due
    return deal["deal_id"], task["id"]


async def complete_at_105959(runtime, task_id: str) -> None:
    async with runtime.db.transaction() as session:
        task = await session.get(Task, task_id)
        await services.complete_task(ctx_of(runtime, session, LEAD), task, local(2026, 3, 3, 10, 59, 59))


async def test_cal3_call_at_105959_while_the_11_breach_timer_runs_ends_met(pg_api) -> None:
    api = pg_api
    runtime = api.app.state.runtime
    deal_id, task_id = await first_call_due_at_11(api)

    async def race() -> None:
        scheduler, held, release = await scheduler_holding(runtime, "clients.deadline")
        firing = asyncio.create_task(scheduler.fire_batch())
        await held.wait()  # the timer breached the deadline; not committed yet
        completing = asyncio.create_task(complete_at_105959(runtime, task_id))
        await someone_waits_for_a_lock(runtime)
        release.set()
        await firing
        await completing

    api.in_app(race)
    deal = await api.deal(deal_id)
    assert deal["deadlines"][0]["state"] == "met" and deal["stage"] == "contacted"
    [breach] = await api.events("clients.deadline.breached")
    [met] = await api.events("clients.deadline.met")
    assert met.revises_breach_event_id == breach.event_id  # payroll voids the PAY-6 line


async def test_cal3_breach_timer_gives_way_to_the_call_holding_the_deal(pg_api) -> None:
    api = pg_api
    runtime = api.app.state.runtime
    deal_id, task_id = await first_call_due_at_11(api)

    async def race() -> None:
        async with runtime.db.transaction() as session:
            await services.get_deal(session, deal_id)
            assert await asyncio.wait_for(runtime.scheduler.fire_batch(), 20) == 0  # left, not failed
            task = await session.get(Task, task_id)
            await services.complete_task(ctx_of(runtime, session, LEAD), task, local(2026, 3, 3, 10, 59, 59))
        await runtime.scheduler.run_due()

    api.in_app(race)
    assert (await api.deal(deal_id))["deadlines"][0]["state"] == "met"
    assert await api.events("clients.deadline.breached") == []


# ---------------------------------------------------------------- §4: the same payment, concurrently

async def test_same_payment_external_id_posted_concurrently_answers_one_deal(api_any) -> None:
    api = api_any
    runtime = api.app.state.runtime
    body = msgspec.convert(payment("dup-race"), PaymentIn, strict=False)

    async def post() -> tuple[str, bool]:
        async with runtime.db.transaction() as session:
            result = await services.record_payment(ctx_of(runtime, session), body)
            return result.deal.id, result.created

    async def race() -> list[tuple[str, bool]]:
        return await asyncio.gather(*(post() for _ in range(8)))

    results = api.in_app(race)
    assert len({deal_id for deal_id, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert len(await api.events("clients.deal.paid")) == 1


async def test_same_payment_external_id_concurrently_over_http_is_200_or_201(api_any) -> None:
    api = api_any
    answers = await asyncio.gather(*(api.post("/payments", payment("dup-http")) for _ in range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text for a in answers]
    assert len({a.json()["deal_id"] for a in answers}) == 1


async def test_same_payment_external_id_with_different_fields_is_409_naming_them(api_any) -> None:
    api = api_any
    first = await api.pay(payment("dup-409"))
    other = await api.pay(payment("another"))
    changed = payment("dup-409") | {"amount": "61000.00", "currency": "USD"}
    changed["client"] = changed["client"] | {"phone": "+7 777 000 00 01"}
    response = await api.post("/payments", changed)
    assert response.status_code == 409, response.text
    assert {e["field"] for e in response.json()["errors"]} == {"amount", "currency", "client"}
    on_other_deal = await api.post("/payments", payment("dup-409") | {"deal_id": other["deal_id"]})
    assert on_other_deal.status_code == 409 and [e["field"] for e in on_other_deal.json()["errors"]] == ["deal_id"]
    same = await api.post("/payments", payment("dup-409"))
    assert same.status_code == 200 and same.json()["deal_id"] == first["deal_id"]
