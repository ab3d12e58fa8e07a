"""CL-12: payment details / invoice numbers are unique per year even when two documents are made at
the same moment (an atomically incremented counter row plus a unique constraint)."""

from __future__ import annotations

import asyncio

from clients import services
from clients.documents import render_document
from shared.auth import Actor

from .conftest import local
from .test_deals import launched_deal


async def test_cl12_concurrent_renewal_answers_get_different_document_numbers(api_any) -> None:
    deal_ids = [await launched_deal(api_any, f"p{i}") for i in range(2)]
    api_any.clock.set(local(2026, 3, 30, 12, 0))
    runtime = api_any.app.state.runtime

    async def answer(deal_id: str) -> str:
        async with runtime.db.transaction() as session:
            ctx = services.Ctx(session, runtime.clock, runtime.settings, Actor(login="lead", role="lead"))
            deal = await services.get_deal(session, deal_id)
            await services.renewal_answer(ctx, deal, True, ctx.now)
            await asyncio.sleep(0.2)  # both transactions are open at once: a count would give both "2026-1"
            return deal_id

    async def both() -> list[str]:
        return await asyncio.gather(*(answer(d) for d in deal_ids))

    api_any.in_app(both)
    numbers = [(await api_any.deal(d))["documents"][0]["number"] for d in deal_ids]
    assert sorted(numbers) == ["2026-1", "2026-2"]


async def test_cl12_document_numbers_count_per_year_and_never_repeat(api) -> None:
    runtime = api.app.state.runtime
    deal_id = await launched_deal(api)

    async def render_three() -> list[str]:
        async with runtime.db.transaction() as session:
            ctx = services.Ctx(session, runtime.clock, runtime.settings, Actor(login="lead", role="lead"))
            deal = await services.get_deal(session, deal_id)
            return [(await render_document(ctx, deal, at)).number
                    for at in (local(2026, 3, 30, 12), local(2026, 12, 31, 23, 0), local(2027, 1, 1, 0, 30))]

    async def failed_render() -> None:
        async with runtime.db.transaction() as session:
            ctx = services.Ctx(session, runtime.clock, runtime.settings, Actor(login="lead", role="lead"))
            await render_document(ctx, await services.get_deal(session, deal_id), local(2027, 2, 1, 12))
            raise RuntimeError("rolled back")

    assert api.in_app(render_three) == ["2026-1", "2026-2", "2027-1"]
    try:
        api.in_app(failed_render)
    except RuntimeError:
        pass
    assert api.in_app(render_three)[2] == "2027-2"  # a rolled-back document gives its number back; none repeats
