"""Issue 15 (CL-16 × EN-1): leads registered from the inbox's sales conversations — matched, never duplicated,
idempotent; the first answerer is the administrator; CL-1 fields from the conversation; spam / wrong number
leave the funnel. The consumer's handlers are called as the durable consumer calls them (one transaction per
message); the cross-service journey through NATS is in tests/e2e/test_sales_funnel.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from clients import inbox_leads
from shared.events.engagement import ConversationAnswered, SalesDialogStarted

from .conftest import T0, payment

LEAD = ("aliya", "lead")
AGENT = ("agent1", "care_agent")


def dialog(conversation_id: str, *, kind: str = "instagram", handle: str = "", name: str = "", phone: str = "",
           email: str = "", instagram: str = "", at=T0, event_id: str | None = None) -> SalesDialogStarted:
    extra = {"event_id": event_id} if event_id else {}
    return SalesDialogStarted(conversation_id=conversation_id, channel_id=f"ch-{kind}", channel_kind=kind,
                              thread_kind="ig_direct" if kind == "instagram" else "tg_chat", account="agency",
                              message_id=f"m-{conversation_id}", first_message_at=at, customer_name=name,
                              customer_handle=handle, phone=phone, email=email, instagram=instagram, **extra)


def answered(conversation_id: str, agent: str, at=T0, sales: bool = True) -> ConversationAnswered:
    return ConversationAnswered(conversation_id=conversation_id, channel_id="ch", channel_kind="instagram",
                                account="agency", agent=agent, message_id="m-out", first_message_at=at,
                                answered_at=at + timedelta(minutes=3), response_seconds=180, sales=sales)


async def deliver(api, event: Any) -> None:
    [subscription] = [s for s in api.app.state.runtime.spec.subscriptions(api.app.state.runtime)
                      if s.name == "clients-engagement"]
    handler = subscription.handlers[event.subject]

    async def run() -> None:
        async with api.app.state.runtime.db.transaction() as session:
            await handler(event, session)

    api.in_app(run)


async def patch_ok(api, path: str, body: dict, as_=LEAD) -> dict:
    response = await api.client.patch(f"/api/clients{path}", json=body, headers=api.headers(as_))
    assert response.status_code == 200, response.text
    return response.json()


async def lead_of(api, conversation_id: str, as_=LEAD, status: int = 200) -> dict:
    return await api.ok("get", f"/leads/by-conversation/{conversation_id}", as_=as_, status=status)


def test_contact_keys_fold_the_forms_people_write() -> None:
    assert inbox_leads.phone_key("8 (701) 555-01-01") == inbox_leads.phone_key("+7 701 555 0101") == "77015550101"
    assert inbox_leads.phone_key("701 555 01 01") == "77015550101" and inbox_leads.phone_key("12") == ""
    assert inbox_leads.email_key(" Aigerim@Example.KZ ") == "aigerim@example.kz"
    for form in ("@Aigerim.Cakes", "aigerim.cakes", "https://www.instagram.com/aigerim.cakes/?igsh=x",
                 "instagram.com/aigerim.cakes"):
        assert inbox_leads.instagram_key(form) == "aigerim.cakes", form
    assert inbox_leads.instagram_key("https://example.com/x y") == ""


async def test_a_dialog_registers_one_lead_and_the_same_person_is_matched_never_duplicated(api) -> None:
    await deliver(api, dialog("c-direct", handle="1234567890", event_id="e-1"))
    await deliver(api, dialog("c-direct", handle="1234567890", event_id="e-1-again"))   # redelivered, other id
    lead = await lead_of(api, "c-direct")
    assert lead["stage"] == "dialog" and lead["channel"] == "instagram" and lead["owner"] == ""
    assert lead["full_name"] == "1234567890" and lead["created_at"] == T0.isoformat()
    assert [c["customer_handle"] for c in lead["conversations"]] == ["1234567890"]
    # The agent fills in the phone; the person writes on Telegram with the phone in another form.
    await patch_ok(api, f"/leads/{lead['id']}", {"phone": "+7 701 555 0101", "full_name": "Айгерим"}, as_=AGENT)
    await deliver(api, dialog("c-tg", kind="telegram", handle="@aigerim", name="Aigerim", phone="87015550101",
                              at=T0 + timedelta(hours=1)))
    # …and by e-mail (another case) and an Instagram comment (the username as a link) — still the same lead.
    await patch_ok(api, f"/leads/{lead['id']}", {"email": "a@example.kz", "instagram": "@aigerim.cakes"}, as_=AGENT)
    await deliver(api, dialog("c-mail", kind="email", handle="A@Example.kz", email="A@Example.KZ"))
    await deliver(api, dialog("c-comment", handle="@aigerim.cakes", instagram="aigerim.cakes"))
    # The same Direct handle in another conversation is the same person too.
    await deliver(api, dialog("c-direct-2", handle="1234567890"))
    same = await lead_of(api, "c-tg")
    assert same["id"] == lead["id"] and same["full_name"] == "Айгерим"     # nothing overwritten
    assert sorted(c["conversation_id"] for c in same["conversations"]) == [
        "c-comment", "c-direct", "c-direct-2", "c-mail", "c-tg"]
    assert len(await api.ok("get", "/leads")) == 1
    # A different person is another lead, with what the channel knew.
    await deliver(api, dialog("c-other", kind="telegram", handle="@dana", name="Дана", phone="+7 702 111 22 33"))
    other = await lead_of(api, "c-other")
    assert other["id"] != lead["id"] and other["phone"] == "+7 702 111 22 33" and other["full_name"] == "Дана"


async def test_the_first_answer_makes_the_administrator_whichever_event_comes_first(api) -> None:
    await deliver(api, answered("c-early", "agent2"))      # the answer's event consumed before the dialog's
    await deliver(api, dialog("c-early", handle="111"))
    assert (await lead_of(api, "c-early"))["owner"] == "agent2"
    await deliver(api, dialog("c-late", handle="222"))
    await deliver(api, answered("c-late", "agent1"))
    await deliver(api, answered("c-late", "agent2"))       # only the first answer counts
    assert (await lead_of(api, "c-late"))["owner"] == "agent1"
    await deliver(api, answered("c-client", "agent1", sales=False))   # a client account's answer: nothing kept
    assert (await api.get("/leads/by-conversation/c-client", as_=LEAD)).status_code == 404
    changed = await api.events("lead.stage_changed")
    assert {e.lead_id for e in changed} == {(await lead_of(api, c))["id"] for c in ("c-early", "c-late")}
    assert changed[-1].owner == "agent1" and changed[-1].conversation_ids == ["c-late"]


async def test_inbox_leads_are_the_agents_and_bad_input_is_named(api) -> None:
    await deliver(api, dialog("c-1", handle="333"))
    lead = await lead_of(api, "c-1", as_=AGENT)
    hand = await api.ok("post", "/leads", {"full_name": "Ручной", "phone": "+7 703 000 0000"}, as_=LEAD)
    assert (await api.get(f"/leads/{hand['id']}", as_=AGENT)).status_code == 404   # not an inbox lead
    assert (await api.client.patch(f"/api/clients/leads/{hand['id']}", json={"notes": "x"},
                                   headers=api.headers(AGENT))).status_code == 404
    assert [x["id"] for x in await api.ok("get", "/leads", as_=AGENT)] == [lead["id"]]
    assert (await api.client.patch(f"/api/clients/leads/{lead['id']}", json={"notes": "x"},
                                   headers=api.headers(("analyst", "analyst")))).status_code == 403
    bad = await api.client.patch(f"/api/clients/leads/{lead['id']}", headers=api.headers(AGENT),
                                 json={"email": "no-at", "phone": "12", "full_name": " ", "instagram": "@."})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"email", "phone", "full_name", "instagram"}
    assert (await api.client.patch(f"/api/clients/leads/{lead['id']}", headers=api.headers(AGENT),
                                   json={"owner": "me"})).status_code in (400, 422)          # not a CL-1 field
    assert (await lead_of(api, "c-1"))["phone"] == ""                                         # nothing half-written
    moved = await api.ok("post", f"/leads/{lead['id']}/stage", {"stage": "warm_lead"}, as_=AGENT)
    assert moved["stage"] == "warm_lead"


async def test_spam_and_wrong_numbers_leave_the_funnel_and_a_paid_lead_is_no_spam(api) -> None:
    for n, conversation in enumerate(("c-a", "c-b", "c-c")):
        await deliver(api, dialog(conversation, handle=f"h{n}", at=T0 + timedelta(minutes=n)))
        await deliver(api, answered(conversation, "agent1", at=T0 + timedelta(minutes=n)))
    a, b, c = [await lead_of(api, x) for x in ("c-a", "c-b", "c-c")]
    api.clock.advance(timedelta(hours=3))
    marked = await api.ok("post", f"/leads/{b['id']}/disqualify", {"reason": "spam"}, as_=AGENT)
    assert marked["disqualified"] == "spam"
    assert (await api.post(f"/leads/{b['id']}/stage", {"stage": "warm_lead"}, as_=AGENT)).status_code == 409
    assert (await api.post(f"/leads/{b['id']}/disqualify", {"reason": "rude"}, as_=AGENT)).status_code in (400, 422)
    await api.ok("post", f"/leads/{c['id']}/disqualify", {"reason": "wrong_number"}, as_=AGENT)
    await api.ok("post", f"/leads/{c['id']}/disqualify", {"reason": None}, as_=AGENT)   # a mistake: back in
    await api.pay(payment("pay-sales", lead_id=a["id"], paid_at=T0 + timedelta(hours=2)))
    refused = await api.post(f"/leads/{a['id']}/disqualify", {"reason": "spam"}, as_=AGENT)
    assert refused.status_code == 409, refused.text
    report = await api.ok("get", "/reports/funnel?month=2026-03", as_=LEAD)
    steps = {s["step"]: s for s in report["steps"]}
    assert steps["dialogs"]["count"] == 2 and steps["paid"]["count"] == 1
    assert steps["paid"]["median_seconds_from_first_message"] == 2 * 3600
    assert [a["administrator"] for a in report["by_administrator"]] == ["agent1"]
    paid = [e for e in await api.events("lead.stage_changed") if e.stage == "paid"]
    assert paid and paid[-1].deal_id and paid[-1].conversation_ids == ["c-a"]


@pytest.mark.parametrize("query", ["", "from=2026-03-01", "from=2026-03-10&to=2026-03-01", "from=x&to=y",
                                   "month=2026-13"])
async def test_the_funnel_period_is_named_when_wrong(api, query: str) -> None:
    response = await api.get(f"/reports/funnel?{query}", as_=LEAD)
    assert response.status_code == 422, response.text


def test_0006_fills_the_contact_keys_of_leads_entered_before_it(tmp_path) -> None:
    import sqlite3

    from alembic import command
    from shared.migrate import alembic_config

    path = tmp_path / "old.db"
    cfg = alembic_config("clients", f"sqlite+aiosqlite:///{path}")
    command.upgrade(cfg, "infra_0002")
    db = sqlite3.connect(path)
    db.execute("INSERT INTO leads (id, full_name, phone, instagram, email, product, payer_type, notes, source, "
               "owner, stage, created_at, search_text) VALUES ('l1', 'Берик', '8 (700) 123-45-67', "
               "'https://instagram.com/Berik.Shop', 'B@X.kz', '', 'individual', '', '', 'manager1', 'dialog', "
               "'2026-03-02 06:00:00.000000', '')")
    db.commit()
    command.upgrade(cfg, "head")
    assert list(db.execute("SELECT phone_key, email_key, instagram_key, channel, disqualified FROM leads")) == [
        ("77001234567", "b@x.kz", "berik.shop", "", None)]
