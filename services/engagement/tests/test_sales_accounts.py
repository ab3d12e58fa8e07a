"""Issue 15 (CL-16 × EN-1): the agency's own sales accounts. A new conversation's first customer message on a
sales account publishes `engagement.conversation.sales_dialog_started.v1` with what the channel knows; a client
account's publishes nothing of the kind; the conversation records where its lead stands from
`clients.lead.stage_changed.v1`."""

from __future__ import annotations

from datetime import timedelta

from engagement import sales
from engagement.channels import Inbound
from shared.events.clients import LeadStageChanged

from .payloads import IG_CONFIG, LEAD, T0, TG_CONFIG, ig_comment, ig_direct, meta_batch, tg_private

DIALOG = "engagement.conversation.sales_dialog_started.v1"


async def test_a_channel_is_marked_as_a_sales_account_on_create_and_by_patch(api) -> None:
    ig = await api.ok("post", "/channels", {"kind": "instagram", "name": "Агентство", "sales": True,
                                            "config": IG_CONFIG}, status=201)
    assert ig["sales"] is True and ig["account"] == "agency"
    tg = await api.channel("telegram", TG_CONFIG, deal_id=None)
    assert tg["sales"] is False
    patched = await api.client.patch(f"/api/engagement/channels/{tg['id']}", json={"sales": True, "name": " TG "},
                                     headers=api.headers(LEAD))
    assert patched.status_code == 200 and patched.json()["sales"] is True and patched.json()["name"] == "TG"
    assert [c["sales"] for c in await api.ok("get", "/channels")] == [True, True]
    for body, status in (({"sales": "yes"}, 400), ({"colour": "red"}, 400), ({"name": "  "}, 422)):
        bad = await api.client.patch(f"/api/engagement/channels/{tg['id']}", json=body, headers=api.headers(LEAD))
        assert bad.status_code in (status, 422), (body, bad.status_code, bad.text)
    senior = await api.client.patch(f"/api/engagement/channels/{tg['id']}", json={"sales": False},
                                    headers=api.headers(("senior1", "senior_agent")))
    assert senior.status_code == 403
    missing = await api.client.patch("/api/engagement/channels/nope", json={"sales": False}, headers=api.headers(LEAD))
    assert missing.status_code == 404


async def test_the_first_message_on_a_sales_account_starts_a_dialog_once(api) -> None:
    await api.ok("post", "/channels", {"kind": "instagram", "name": "Агентство", "sales": True,
                                       "config": IG_CONFIG}, status=201)
    await api.instagram(meta_batch(messaging=[ig_direct(text="Здравствуйте! Мой номер +7 701 555 01 01, "
                                                           "почта aigerim@example.kz")]))
    await api.instagram(meta_batch(messaging=[ig_direct(mid="mid-2", text="Вы тут?", at_s=int(T0.timestamp()) + 60)]))
    await api.instagram(meta_batch(changes=[ig_comment(text="Сколько стоит?")]))
    await api.process()
    dialogs = await api.events(DIALOG)
    assert len(dialogs) == 2                         # the Direct conversation once, the comments thread once
    direct = next(d for d in dialogs if d.thread_kind == "ig_direct")
    assert (direct.customer_handle, direct.phone, direct.email, direct.instagram) == (
        "1234567890123456", "+7 701 555 01 01", "aigerim@example.kz", "")
    assert direct.first_message_at == T0 and direct.channel_kind == "instagram" and direct.account == "agency"
    comment = next(d for d in dialogs if d.thread_kind == "ig_comments")
    assert comment.instagram == "aigerim.cakes" and comment.customer_handle == "@aigerim.cakes"
    # The first answer on a sales account says so (the funnel's administrator is who answered first).
    [conversation] = await api.conversations(q="1234567890123456")
    await api.ok("post", f"/conversations/{conversation['id']}/replies", {"text": "Добрый день!"})
    [answer] = await api.events("engagement.conversation.answered.v1")
    assert answer.sales is True


async def test_a_client_accounts_message_starts_no_dialog(api) -> None:
    channel = await api.channel("telegram", TG_CONFIG, deal_id="deal-1")
    response = await api.webhook(f"/webhooks/telegram/{channel['id']}", tg_private(),
                                 {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"]})
    assert response.status_code == 200
    await api.process()
    assert len(await api.conversations()) == 1
    assert await api.events(DIALOG) == []
    [conversation] = await api.conversations()
    await api.ok("post", f"/conversations/{conversation['id']}/replies", {"text": "Здравствуйте!"})
    [answer] = await api.events("engagement.conversation.answered.v1")
    assert answer.sales is False and conversation["lead"] is None


def test_contacts_from_a_telegram_shared_contact_and_from_the_text() -> None:
    item = Inbound(thread_kind="tg_chat", thread_key="chat:1", external_id="1", text="", at=T0, author="a",
                   customer_name="Anna", customer_handle="@anna_k", reply_target={},
                   raw={"message": {"contact": {"phone_number": "+77015550101", "first_name": "Anna"}}})
    assert sales.contacts_of(item) == {"instagram": "", "phone": "+77015550101", "email": ""}
    assert sales.find_phone("звоните 8 (701) 555-01-01 после обеда") == "8 (701) 555-01-01"
    assert sales.find_phone("заказ №12345, 2026 год") == ""
    assert sales.find_email("пишите: Dana.O@mail.kz!") == "Dana.O@mail.kz"


async def test_the_conversation_records_where_its_lead_stands(api) -> None:
    await api.ok("post", "/channels", {"kind": "instagram", "name": "Агентство", "sales": True,
                                       "config": IG_CONFIG}, status=201)
    await api.instagram(meta_batch(messaging=[ig_direct()]))
    await api.process()
    [conversation] = await api.conversations()
    [subscription] = [s for s in api.runtime.spec.subscriptions(api.runtime) if LeadStageChanged.subject in s.handlers]
    handler = subscription.handlers[LeadStageChanged.subject]

    async def deliver(event: LeadStageChanged) -> None:
        async with api.runtime.db.transaction() as session:
            await handler(event, session)

    later = LeadStageChanged(lead_id="lead-1", stage="paid", at=T0, occurred_at=T0 + timedelta(days=1),
                             conversation_ids=[conversation["id"], "not-ours"], deal_id="deal-9")
    earlier = LeadStageChanged(lead_id="lead-1", stage="warm_lead", at=T0, occurred_at=T0 + timedelta(hours=1),
                               conversation_ids=[conversation["id"]])
    api.in_app(deliver, later)
    api.in_app(deliver, earlier)                     # late and older: does not undo the payment
    detail = await api.ok("get", f"/conversations/{conversation['id']}")
    assert detail["lead"] == {"id": "lead-1", "stage": "paid", "deal_id": "deal-9", "disqualified": None}
