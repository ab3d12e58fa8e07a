"""CL-12: payment details / invoice numbers are unique per year even when two documents are made at
the same moment (an atomically incremented counter row plus a unique constraint)."""

from __future__ import annotations

import asyncio

import pytest
from clients import services
from clients.documents import render_document
from shared.auth import Actor
from shared.errors import DomainError

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


async def test_issue9_a_document_never_prints_placeholder_requisites(api) -> None:
    """CL-12 / issue 9: without the agency's requisites the document says which are missing (no zeros); once
    the lead enters them (validated: BIN checksum, KZ IBAN, BIK) they are printed."""
    runtime = api.app.state.runtime
    deal_id = await launched_deal(api)

    async def render(at) -> str:
        async with runtime.db.transaction() as session:
            ctx = services.Ctx(session, runtime.clock, runtime.settings, Actor(login="lead", role="lead"))
            return (await render_document(ctx, await services.get_deal(session, deal_id), at)).html

    before = api.in_app(lambda: render(local(2026, 3, 30, 12)))
    assert "Реквизиты агентства не заполнены" in before and "БИН, банк, БИК, IBAN" in before
    assert "000000000000" not in before and "KZ00" not in before

    async def enter(values: dict) -> None:
        async with runtime.db.transaction() as session:
            ctx = services.Ctx(session, runtime.clock, runtime.settings, Actor(login="lead", role="lead"))
            await services.put_settings(ctx, values, local(2026, 3, 1))

    requisites = {"agency_name": "ТОО «Забота»", "agency_bin": "180140000018", "agency_bank": "АО «Kaspi Bank»",
                  "agency_bik": "CASPKZKA", "agency_iban": "KZ86 125K ZT50 0410 0100",
                  "agency_address": "Алматы, пр. Абая 1", "agency_signer": "Директор Омарова А. К."}
    with pytest.raises(DomainError) as refused:   # a wrong control digit: the field and the reason's code
        api.in_app(lambda: enter({**requisites, "agency_bin": "180140000019"}))
    assert refused.value.errors[0]["field"] == "values.agency_bin"
    assert refused.value.errors[0]["code"] == "bin.checksum"
    api.in_app(lambda: enter(requisites))
    after = api.in_app(lambda: render(local(2026, 3, 30, 13)))
    assert "не заполнены" not in after and "180140000018" in after and "KZ86125KZT5004100100" in after
