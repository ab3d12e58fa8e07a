"""Issue 11 §website form, the gateway's public page `/f/{slug}`: rendered in the visitor's language, protected by
its own signed form token (it works inside an iframe on a client's site, where our cookies are not sent) and a
honeypot, handed to engagement with the gateway's integration credential (never a signed-in staff member's),
thanked only after engagement accepted it, 429 translated, and frameable by any site (this page only).

Engagement is a stand-in here (a real Litestar app on loopback answering issue 11's contract as engagement
does: see services/engagement/tests/test_webform.py for the real one)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway.app import create_app
from gateway.pages.webform import check_token, form_token
from litestar import Litestar, Request, Response, get, post
from litestar.testing import AsyncTestClient

from .conftest import down_service_urls, gateway_settings


class Engagement:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.answer: tuple[int, Any] | None = None

    def app(self) -> Litestar:
        @get("/api/engagement/webform/{slug:str}")
        async def info(request: Request, slug: str) -> Response:
            self.auth.append(request.headers.get("authorization", ""))
            if slug != "kaspi-cakes":
                return Response({"detail": "no such form", "errors": []}, status_code=404)
            return Response({"slug": slug, "name": "Kaspi Cakes <Алматы>"})

        @post("/api/engagement/webform/{slug:str}")
        async def submit(request: Request, slug: str) -> Response:
            self.auth.append(request.headers.get("authorization", ""))
            if self.answer is not None:
                return Response(self.answer[1], status_code=self.answer[0])
            body = await request.json()
            duplicate = any(p["submission_id"] == body["submission_id"] for p in self.posts)
            if not duplicate:
                self.posts.append(body)
            return Response({"accepted": True, "duplicate": duplicate}, status_code=202)

        return Litestar([info, submit])


@pytest.fixture
def engagement() -> Engagement:
    return Engagement()


@pytest.fixture
async def client(live_server, tmp_path, engagement) -> AsyncIterator[AsyncTestClient]:
    urls = {**down_service_urls(), "engagement": live_server(engagement.app())}
    settings = gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", service_urls=urls)
    async with AsyncTestClient(create_app(settings, background=False), base_url="http://127.0.0.1") as c:
        yield c


def _token(html: str) -> str:
    match = re.search(r'name="_form" value="([^"]+)"', html)
    assert match, "no form token on the page"
    return match.group(1)


def _form(html: str, **values: str) -> dict[str, str]:
    return {"_form": _token(html), "name": "Дана", "contact": "dana@example.com",
            "message": "Хочу торт на субботу", "website": "", **values}


async def test_issue11_webform_page_speaks_the_visitors_language_and_may_be_framed(client) -> None:
    english = await client.get("/f/kaspi-cakes", headers={"Accept-Language": "en-GB,en;q=0.9,ru;q=0.5"})
    assert english.status_code == 200
    assert '<html lang="en">' in english.text and "Your name" in english.text
    assert "Kaspi Cakes &lt;Алматы&gt;" in english.text            # the form's name is escaped
    assert "frame-ancestors *" in english.headers["content-security-policy"]
    assert "x-frame-options" not in english.headers
    chinese = await client.get("/f/kaspi-cakes", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "您的姓名" in chinese.text
    kazakh = await client.get("/f/kaspi-cakes?lang=kk", headers={"Accept-Language": "en"})
    assert "Атыңыз" in kazakh.text
    again = await client.get("/f/kaspi-cakes", headers={"Accept-Language": "en"})
    assert '<html lang="kk">' in again.text                         # the visitor's choice is remembered
    client.cookies.clear()
    default = await client.get("/f/kaspi-cakes", headers={"Accept-Language": "de-DE"})
    assert '<html lang="ru">' in default.text and "Ваше имя" in default.text   # the agency's language
    other_page = await client.get("/login")
    assert other_page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in other_page.headers["content-security-policy"]
    missing = await client.get("/f/nope", headers={"Accept-Language": "en"})
    assert missing.status_code == 404 and "This form does not exist" in missing.text


async def test_issue11_webform_is_handed_over_with_the_integration_credential_then_thanked(client,
                                                                                           engagement) -> None:
    page = await client.get("/f/kaspi-cakes", headers={"Accept-Language": "en"})
    sent = await client.post("/f/kaspi-cakes?lang=en", data=_form(page.text))
    assert sent.status_code == 200 and "Thank you!" in sent.text and "by e-mail" in sent.text
    [posted] = engagement.posts
    assert posted["name"] == "Дана" and posted["contact"] == "dana@example.com"
    assert posted["message"] == "Хочу торт на субботу" and posted["ip"] == "testclient"   # the test client's address
    assert posted["submission_id"] == _token(page.text).split(".")[0]
    assert all(a.startswith("Bearer ") for a in engagement.auth)
    again = await client.post("/f/kaspi-cakes?lang=en", data=_form(page.text))   # the same form sent twice
    assert again.status_code == 200 and len(engagement.posts) == 1
    phone = await client.get("/f/kaspi-cakes?lang=en")
    called = await client.post("/f/kaspi-cakes?lang=en", data=_form(phone.text, contact="+7 701 123 45 67"))
    assert "call you back" in called.text


async def test_issue11_webform_honeypot_is_thanked_and_nothing_is_stored(client, engagement) -> None:
    page = await client.get("/f/kaspi-cakes?lang=en")
    bot = await client.post("/f/kaspi-cakes?lang=en", data=_form(page.text, website="http://spam.example"))
    assert bot.status_code == 200 and "Thank you!" in bot.text
    assert engagement.posts == [] and not any(engagement.auth[1:])


async def test_issue11_webform_without_a_valid_form_token_is_refused(client, engagement) -> None:
    page = await client.get("/f/kaspi-cakes?lang=en")
    for token in ("", "forged.1.abc", form_token("another-secret", "kaspi-cakes"),
                  form_token("dev-secret-key-change-me", "another-form")):
        refused = await client.post("/f/kaspi-cakes?lang=en", data=_form(page.text, _form=token))
        assert refused.status_code == 403 and "The form has expired" in refused.text
    assert engagement.posts == []
    secret = client.app.state.settings.secret_key
    old = form_token(secret, "kaspi-cakes", now=time.time() - 2 * 24 * 3600)
    assert check_token(secret, "kaspi-cakes", old) is None
    assert check_token(secret, "kaspi-cakes", form_token(secret, "kaspi-cakes")) is not None


async def test_issue11_webform_missing_fields_and_rate_limit_are_translated(client, engagement) -> None:
    page = await client.get("/f/kaspi-cakes?lang=ru")
    empty = await client.post("/f/kaspi-cakes?lang=ru", data=_form(page.text, name="", message=" "))
    assert empty.status_code == 422
    assert "Пожалуйста, напишите ваше имя." in empty.text and "Пожалуйста, напишите сообщение." in empty.text
    assert engagement.posts == []
    engagement.answer = (422, {"detail": "contact: bad", "errors": [{"field": "contact", "message": "bad",
                                                                      "code": "contact_invalid"}]})
    bad = await client.post("/f/kaspi-cakes?lang=en", data=_form(page.text, contact="not a contact"))
    assert bad.status_code == 422 and "Write an e-mail address or a phone number" in bad.text
    assert 'value="not a contact"' in bad.text                     # what the visitor wrote is kept
    engagement.answer = (429, {"detail": "too many", "errors": [{"field": "ip", "message": "rate limited",
                                                                 "code": "webform_rate_limited"}]})
    limited = await client.post("/f/kaspi-cakes?lang=zh", data=_form(page.text))
    assert limited.status_code == 429 and "您的地址发送的消息过多" in limited.text
