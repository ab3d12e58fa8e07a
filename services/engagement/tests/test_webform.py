"""Issue 11 §website form (engagement side): the gateway hands a visitor's message over with its integration
credential; it is stored before the answer, once per form render, rate-limited per IP, and becomes a
conversation whose answer goes out by e-mail through the form's e-mail channel (a real SMTP/IMAP server on
loopback) — and the visitor's reply to that e-mail threads back into the same conversation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from engagement.models import Delivery, Message

from .mailserver import SUPPORT, MailServer, mail

VISITOR = "dana@example.com"


@pytest.fixture
def mailserver() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


async def _form(api, mailserver, slug: str = "kaspi-cakes") -> tuple[dict, dict]:
    mailer = await api.channel("email", mailserver.config(), name="Поддержка")
    form = await api.channel("webform", {"email_channel_id": mailer["id"], "slug": slug}, name="Kaspi Cakes")
    return mailer, form


def _submission(n: int = 1, **overrides) -> dict:
    return {"name": "Дана", "contact": VISITOR, "message": "Хочу заказать торт на субботу",
            "submission_id": f"render-{n:04d}-abcdefghijkl", "ip": "203.0.113.7", **overrides}


async def test_issue11_webform_channel_needs_an_email_channel_and_shows_its_snippet(api, mailserver) -> None:
    missing = await api.post("/channels", {"kind": "webform", "name": "Форма", "config": {}})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "config.email_channel_id"
    wrong = await api.post("/channels", {"kind": "webform", "name": "Форма", "config": {"email_channel_id": "nope"}})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "config.email_channel_id"
    _, form = await _form(api, mailserver)
    assert form["form_url"] == "https://zabota.example/f/kaspi-cakes"
    assert form["embed_html"].startswith('<iframe src="https://zabota.example/f/kaspi-cakes" title="Kaspi Cakes"')
    clash = await api.post("/channels", {"kind": "webform", "name": "Ещё",
                                         "config": {"email_channel_id": form["config"]["email_channel_id"],
                                                    "slug": "kaspi-cakes"}})
    assert clash.status_code == 409
    bad_slug = await api.post("/channels", {"kind": "webform", "name": "Ещё",
                                            "config": {"email_channel_id": "x", "slug": "Bad Slug!"}})
    assert bad_slug.status_code == 422 and bad_slug.json()["errors"][0]["field"] == "config.slug"
    info = await api.ok("get", "/webform/kaspi-cakes", as_=None)
    assert info == {"slug": "kaspi-cakes", "name": "Kaspi Cakes"}
    assert (await api.get("/webform/unknown", as_=None)).status_code == 404


async def test_issue11_webform_message_is_stored_once_and_answered_by_email(api_any, mailserver) -> None:
    api = api_any
    await _form(api, mailserver)
    first = await api.ok("post", "/webform/kaspi-cakes", _submission(), as_=None, status=202)
    assert first == {"accepted": True, "duplicate": False}
    again = await api.ok("post", "/webform/kaspi-cakes", _submission(), as_=None, status=202)
    assert again["duplicate"] is True                  # the same form render sent twice
    assert await api.count(Delivery) == 1 and await api.count(Message) == 0
    await api.process()
    [conversation] = await api.conversations()
    assert conversation["kind"] == "webform" and conversation["customer"] == {"name": "Дана", "handle": VISITOR}
    assert conversation["last_message"]["text"] == "Хочу заказать торт на субботу"
    reply = await api.ok("post", f"/conversations/{conversation['id']}/replies", {"text": "Примем заказ, позвоним."},
                         status=202)
    assert await api.send() == 1
    [received] = mailserver.inbox(VISITOR)
    assert "Kaspi Cakes" in str(received["From"]) and SUPPORT in str(received["From"])
    assert received["Subject"].startswith("Re: Kaspi Cakes: Хочу заказать")
    detail = await api.ok("get", f"/conversations/{conversation['id']}")
    sent = next(m for m in detail["messages"] if m["id"] == reply["id"])
    assert sent["delivery"] == "sent" and sent["external_id"] == received["Message-ID"].strip()
    # the visitor answers the e-mail: it lands in the form's conversation, not a new e-mail one
    api.clock.advance(timedelta(hours=1))
    mailserver.send(mail("Re: Kaspi Cakes", "Спасибо, жду звонка", sender=f"Дана <{VISITOR}>",
                         message_id="<dana-2@example.com>", in_reply_to=sent["external_id"], date="06:30"))
    api.in_app(api.runtime.state["mailbox"].poll_all)
    await api.process()
    [same] = await api.conversations()
    assert same["id"] == conversation["id"] and same["last_message"]["text"] == "Спасибо, жду звонка"


async def test_issue11_webform_phone_contact_cannot_be_answered_in_writing(api, mailserver) -> None:
    await _form(api, mailserver)
    await api.ok("post", "/webform/kaspi-cakes", _submission(contact="+7 701 123 45 67"), as_=None, status=202)
    await api.process()
    [conversation] = await api.conversations()
    assert "+7 701 123 45 67" in conversation["unreachable"]
    refused = await api.post(f"/conversations/{conversation['id']}/replies", {"text": "Здравствуйте"})
    assert refused.status_code == 409


async def test_issue11_webform_bad_fields_name_each_field(api, mailserver) -> None:
    await _form(api, mailserver)
    response = await api.post("/webform/kaspi-cakes", _submission(name=" ", contact="not a contact", message=""),
                              as_=None)
    assert response.status_code == 422
    assert {e["field"]: e["code"] for e in response.json()["errors"]} == {
        "name": "required", "contact": "contact_invalid", "message": "required"}
    assert await api.count(Delivery) == 0


async def test_issue11_webform_is_rate_limited_per_ip(api, mailserver) -> None:
    await _form(api, mailserver)
    for n in range(5):
        await api.ok("post", "/webform/kaspi-cakes", _submission(n), as_=None, status=202)
    limited = await api.post("/webform/kaspi-cakes", _submission(99), as_=None)
    assert limited.status_code == 429 and limited.json()["errors"][0]["code"] == "webform_rate_limited"
    other = await api.post("/webform/kaspi-cakes", _submission(100, ip="198.51.100.1"), as_=None)
    assert other.status_code == 202
    api.clock.advance(timedelta(minutes=11))
    assert (await api.post("/webform/kaspi-cakes", _submission(101), as_=None)).status_code == 202
    assert await api.count(Delivery) == 7


async def test_issue11_only_the_gateway_integration_hands_over_form_messages(api, mailserver) -> None:
    await _form(api, mailserver)
    response = await api.post("/webform/kaspi-cakes", _submission(), as_=("aliya", "lead"))
    assert response.status_code == 403 and await api.count(Delivery) == 0
