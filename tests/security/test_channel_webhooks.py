"""Forged and replayed channel webhooks of the care inbox (issue 8, "The suite that keeps it so": "the inbox
and group pushes add their channels to it"; issue 11's webhook contract; DESIGN 8, 9).

The three channel webhooks are public routes whose credential is the channel's own signature:
- Instagram (`POST /webhooks/instagram`): `X-Hub-Signature-256`, the Meta app secret's HMAC-SHA256 of the raw
  body;
- Telegram (`POST /webhooks/telegram/{channel_id}`): `X-Telegram-Bot-Api-Secret-Token`, the channel's secret;
- VK (`POST /webhooks/vk/{channel_id}`): the body's `secret`, the channel's Callback API secret.

Every forgery — no credential, a wrong one, another channel's, our payment signature, an integration token,
the right secret on another channel — is refused (401/403/404) on the service's own port and through the
gateway, and stores nothing: after the forgeries one genuine delivery is sent, and once the delivery
processor (which works in arrival order) has made it a message, no forged text is among the channel's
messages. The same genuine delivery three times (and, for Instagram, the same message in another body, as
Meta redelivers) is one message.

The ask-the-client link (EN-5, `GET|POST /ask/{token}`) is public too: the signed token is its credential.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .figures import record
from .identity import META_APP_SECRET, OTHER_SECRET, integration_headers, meta_signature, sign
from .stack import (
    CHANNEL_CONFIGS,
    TG_SECRET,
    VK_SECRET,
    Stack,
    instagram_direct,
    telegram_update,
    vk_message,
)

KINDS = ("telegram", "vk", "instagram")


def _n() -> int:
    return uuid.uuid4().int % 10**9


def base_of(stack: Stack, via: str) -> str:
    return stack.gateway if via == "gateway" else stack.urls["engagement"]


def deliver(stack: Stack, via: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{base_of(stack, via)}{path}", content=body,
                      headers={"Content-Type": "application/json", **headers}, timeout=30)


def genuine(stack: Stack, kind: str, text: str, *, ident: int | None = None) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of a genuine delivery of `text` to the foreign deal's channel of `kind`."""
    ids = stack.foreign.engagement_ids
    n = ident if ident is not None else _n()
    if kind == "telegram":
        body = json.dumps(telegram_update(n, 5_000_000 + n % 1000, text, message_id=n)).encode()
        return f"/webhooks/telegram/{ids['telegram_channel_id']}", body, {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    if kind == "vk":
        body = json.dumps(vk_message(f"ev{n}", 600_000 + n % 1000, text, cmid=n)).encode()
        return f"/webhooks/vk/{ids['vk_channel_id']}", body, {}
    body = json.dumps(instagram_direct(f"mid.{n}", str(700_000 + n % 1000), text)).encode()
    return "/webhooks/instagram", body, {"X-Hub-Signature-256": meta_signature(body)}


def forgeries(stack: Stack, kind: str, text: str) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """Deliveries of `text` that must not be accepted, by name."""
    ids = stack.foreign.engagement_ids
    path, body, headers = genuine(stack, kind, text)
    payment_sig = {"X-Zabota-Signature": sign(body)}
    if kind == "telegram":
        return {
            "no secret token": (path, body, {}),
            "empty secret token": (path, body, {"X-Telegram-Bot-Api-Secret-Token": ""}),
            "wrong secret token": (path, body, {"X-Telegram-Bot-Api-Secret-Token": OTHER_SECRET}),
            "secret token with a suffix": (path, body, {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET + "x"}),
            "the VK channel's secret": (path, body, {"X-Telegram-Bot-Api-Secret-Token": VK_SECRET}),
            "the bot token as secret": (path, body, {"X-Telegram-Bot-Api-Secret-Token":
                                                     CHANNEL_CONFIGS["telegram"]["bot_token"]}),
            "our payment signature": (path, body, payment_sig),
            "an integration token": (path, body, integration_headers()),
            "right secret, VK channel's address": (f"/webhooks/telegram/{ids['vk_channel_id']}", body, headers),
            "right secret, unknown channel": ("/webhooks/telegram/no-such-channel", body, headers),
        }
    if kind == "vk":
        def with_secret(secret: Any, **extra: Any) -> bytes:
            data = json.loads(body)
            if secret is None:
                data.pop("secret")
            else:
                data["secret"] = secret
            return json.dumps({**data, **extra}).encode()

        return {
            "no secret": (path, with_secret(None), {}),
            "empty secret": (path, with_secret(""), {}),
            "wrong secret": (path, with_secret(OTHER_SECRET), {}),
            "secret as a number": (path, with_secret(12345), {}),
            "the Telegram channel's secret": (path, with_secret(TG_SECRET), {}),
            "secret in a header only": (path, with_secret(None), {"X-Vk-Secret": VK_SECRET}),
            "our payment signature": (path, with_secret(None), {"X-Zabota-Signature": sign(with_secret(None))}),
            "an integration token": (path, with_secret(None), integration_headers()),
            "right secret, Telegram channel's address": (f"/webhooks/vk/{ids['telegram_channel_id']}", body, {}),
            "right secret, unknown channel": ("/webhooks/vk/no-such-channel", body, {}),
        }
    good = headers["X-Hub-Signature-256"]
    other_body = body.replace(text.encode(), (text + " altered").encode())
    return {
        "no signature": (path, body, {}),
        "empty signature": (path, body, {"X-Hub-Signature-256": ""}),
        "garbage": (path, body, {"X-Hub-Signature-256": "sha256=deadbeef"}),
        "another app secret": (path, body, {"X-Hub-Signature-256": meta_signature(body, OTHER_SECRET)}),
        "signature of another body": (path, other_body, {"X-Hub-Signature-256": good}),
        "bare hex without scheme": (path, body, {"X-Hub-Signature-256": good.removeprefix("sha256=")}),
        "sha1 scheme": (path, body, {"X-Hub-Signature-256": "sha1=" + good.removeprefix("sha256=")}),
        "truncated digest": (path, body, {"X-Hub-Signature-256": good[:-2]}),
        "our payment signature": (path, body, payment_sig),
        "the payment secret's HMAC": (path, body, {"X-Hub-Signature-256": sign(body)}),
        "an integration token": (path, body, integration_headers()),
    }


def channel_of(stack: Stack, kind: str) -> str:
    return stack.foreign.engagement_ids[f"{kind}_channel_id"]


def settle(stack: Stack, kind: str, via: str, done: Callable[[list[str]], bool] = lambda _t: True) -> list[str]:
    """Send a genuine sentinel delivery and wait until it is a message: everything accepted before it has then
    been processed (the processor works in arrival order)."""
    sentinel = f"sentinel {kind} {uuid.uuid4().hex[:10]}"
    path, body, headers = genuine(stack, kind, sentinel)
    response = deliver(stack, via, path, body, headers)
    assert response.status_code == 200, (kind, via, response.status_code, response.text[:200])
    texts = stack.wait_messages(channel_of(stack, kind), lambda t: sentinel in t and done(t))
    assert texts is not None, f"the genuine {kind} delivery ({via}) never became a message"
    return texts


@pytest.mark.parametrize("via", ["service", "gateway"])
def test_issue8_forged_channel_webhooks_are_refused_and_store_nothing(stack: Stack, via: str) -> None:
    tried = refused = 0
    accepted: list[str] = []
    texts_sent: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for kind in KINDS:
        for name in forgeries(stack, kind, "x"):
            text = f"forged {kind} {uuid.uuid4().hex[:10]}"
            path, body, headers = forgeries(stack, kind, text)[name]
            response = deliver(stack, via, path, body, headers)
            tried += 1
            texts_sent[kind].append(text)
            leaked = CHANNEL_CONFIGS["vk"]["confirmation"] in response.text
            if response.status_code in (401, 403, 404) and not leaked:
                refused += 1
            else:
                accepted.append(f"{kind}: {name} -> {response.status_code} {response.text[:100]}")
    stored: list[str] = []
    for kind in KINDS:
        texts = settle(stack, kind, via)
        stored += [f"{kind}: {t}" for t in texts_sent[kind] if t in texts]
    record(f"forged channel webhooks: Instagram, Telegram, VK ({via})", tried, refused,
           f"stored: {len(stored)}")
    assert not accepted, accepted
    assert not stored, f"a forged delivery became a message: {stored}"


def test_issue8_the_vk_confirmation_answers_only_the_channels_own_secret_and_group(stack: Stack) -> None:
    """VK's `confirmation` request is answered with the account's confirmation string only when the secret and
    the group id are the channel's own (the string lets its holder point VK's callbacks elsewhere)."""
    path = f"/webhooks/vk/{channel_of(stack, 'vk')}"
    confirmation = CHANNEL_CONFIGS["vk"]["confirmation"]
    group = CHANNEL_CONFIGS["vk"]["group_id"]
    attempts = {
        "no secret": {"type": "confirmation", "group_id": group},
        "wrong secret": {"type": "confirmation", "group_id": group, "secret": OTHER_SECRET},
        "right secret, another group": {"type": "confirmation", "group_id": group + 1, "secret": VK_SECRET},
        "the Telegram secret": {"type": "confirmation", "group_id": group, "secret": TG_SECRET},
    }
    tried = refused = 0
    problems = []
    for via in ("service", "gateway"):
        for name, data in attempts.items():
            response = deliver(stack, via, path, json.dumps(data).encode(), {})
            tried += 1
            if response.status_code in (401, 403) and confirmation not in response.text:
                refused += 1
            else:
                problems.append(f"{via} {name}: {response.status_code} {response.text[:80]}")
        control = deliver(stack, via, path, json.dumps({"type": "confirmation", "group_id": group,
                                                        "secret": VK_SECRET}).encode(), {})
        assert control.status_code == 200 and control.text == confirmation, (via, control.status_code, control.text)
    record("VK confirmation without the channel's secret and group", tried, refused)
    assert not problems, problems


def test_issue8_the_same_channel_delivery_three_times_is_one_message(stack: Stack) -> None:
    """Each channel's genuine delivery sent three times (on the service's port and through the gateway) makes
    one message; so does an Instagram message Meta redelivers in another body (another entry time)."""
    tried = prevented = 0
    problems = []
    for kind in KINDS:
        text = f"replayed {kind} {uuid.uuid4().hex[:10]}"
        path, body, headers = genuine(stack, kind, text)
        bodies = [(body, headers)] * 3
        if kind == "instagram":
            again = json.loads(body)
            again["entry"][0]["time"] += 1000
            raw = json.dumps(again).encode()
            bodies.append((raw, {"X-Hub-Signature-256": meta_signature(raw, META_APP_SECRET)}))
        for n, (raw, hdrs) in enumerate(bodies):
            response = deliver(stack, "gateway" if n % 2 else "service", path, raw, hdrs)
            assert response.status_code == 200, (kind, n, response.status_code, response.text[:200])
        texts = settle(stack, kind, "service", lambda t, text=text: text in t)
        extra = len(bodies) - 1
        tried += extra
        copies = texts.count(text)
        prevented += extra if copies == 1 else max(0, extra - (copies - 1))
        if copies != 1:
            problems.append(f"{kind}: {copies} messages of one delivery")
    record("replayed channel webhooks (3x, + a Meta redelivery): one effect", tried, prevented)
    assert not problems, problems


def test_issue8_the_ask_the_client_link_is_its_only_credential(stack: Stack) -> None:
    """EN-5: `GET|POST /ask/{token}` opens the question only with its signed token; a tampered, foreign or
    garbage token is refused (404) and answers nothing; the control (the genuine link) works."""
    conversation = stack.foreign.engagement_ids["conversation_id"]
    asked = stack.api("engagement", "POST", f"/conversations/{conversation}/ask-client",
                      json={"question": "Which size?"})
    token = asked["token"]
    swapped = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    other = stack.api("content", "POST", f"/plans/{stack.foreign.content_ids['plan_id']}/link", expect=(200, 201,
                                                                                                         404, 409))
    forged = {"garbage": "not-a-signed-link", "tampered signature": swapped,
              "tampered body": ("A" + token[1:]) if token[0] != "A" else ("B" + token[1:]), "empty-ish": "x.y"}
    if isinstance(other, dict) and other.get("token"):
        forged["a plan approval link (another purpose)"] = other["token"]
    base = stack.urls["engagement"]
    tried = refused = 0
    problems = []
    for name, value in forged.items():
        for method, kwargs in (("GET", {}), ("POST", {"json": {"answer": f"forged answer {name}"}})):
            response = httpx.request(method, f"{base}/ask/{value}", timeout=30, **kwargs)
            tried += 1
            if response.status_code in (400, 401, 403, 404, 410) and "Which size?" not in response.text:
                refused += 1
            else:
                problems.append(f"{name} {method}: {response.status_code} {response.text[:100]}")
    control = httpx.get(f"{base}/ask/{token}", timeout=30)
    assert control.status_code == 200 and control.json()["question"] == "Which size?", control.text[:200]
    assert control.json()["answered"] is False, "a forged link answered the question"
    record("ask-the-client links: forged, tampered, other purpose", tried, refused)
    assert not problems, problems
