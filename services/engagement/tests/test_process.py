"""Issue 11 end to end, as in production: the engagement service as its own process (settings from the
environment, background processor and sender), a real nats-server, and the stand-in Telegram API. A webhook is
answered, processed in the background, published on JetStream; the reply reaches the stand-in once."""

from __future__ import annotations

import json
import os

import httpx
import nats
from shared.events import decode
from shared.settings import Settings
from shared.testing import eventually

from .payloads import TG_CONFIG, staff, tg_private


async def test_issue11_webhook_to_jetstream_and_reply_to_the_channel_in_the_service_process(
        nats_server, service_process, stand_in, tmp_path) -> None:
    url = service_process("engagement", nats_url=nats_server.url,
                          database_url=f"sqlite+aiosqlite:///{tmp_path / 'engagement.db'}",
                          env={"TELEGRAM_API_URL": f"{stand_in.url}/tg", "ZABOTA_PUBLIC_URL": "https://z.example"})
    env_settings = Settings.from_env("engagement", {k: v for k, v in os.environ.items()
                                                    if not k.endswith("DATABASE_URL")})
    LEAD = staff("aliya", "lead", env_settings)  # noqa: N806
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            created = await http.post("/api/engagement/channels", headers=LEAD,
                                      json={"kind": "telegram", "name": "bot", "deal_id": "deal-1",
                                            "config": TG_CONFIG})
            assert created.status_code == 201, created.text
            channel = created.json()
            assert channel["webhook_url"] == f"https://z.example/webhooks/telegram/{channel['id']}"
            hook = await http.post(f"/webhooks/telegram/{channel['id']}", content=json.dumps(tg_private()),
                                   headers={"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"],
                                            "Content-Type": "application/json"})
            assert hook.status_code == 200

            async def listed():
                items = (await http.get("/api/engagement/conversations", headers=LEAD)).json()
                return items or None

            [conversation] = await eventually(listed, timeout=30, message="the webhook processed")
            sub = await js.subscribe("engagement.message.received.v1", stream="ENGAGEMENT")
            msg = await sub.next_msg(timeout=30)
            received = decode(msg.subject, msg.data)
            assert received.conversation_id == conversation["id"] and received.deal_id == "deal-1"

            reply = await http.post(f"/api/engagement/conversations/{conversation['id']}/replies", headers=LEAD,
                                    json={"text": "Здравствуйте!"})
            assert reply.status_code == 202 and reply.json()["delivery"] == "pending"

            async def sent():
                detail = (await http.get(f"/api/engagement/conversations/{conversation['id']}", headers=LEAD)).json()
                return [m for m in detail["messages"] if m["direction"] == "out" and m["delivery"] == "sent"]

            await eventually(sent, timeout=30, message="the reply sent")
            assert [c["body"]["text"] for c in stand_in.delivered] == ["Здравствуйте!"]
        log = next((tmp_path / "services").glob("engagement-*/service.log")).read_text()
        assert TG_CONFIG["bot_token"] not in log and TG_CONFIG["secret_token"] not in log
    finally:
        await nc.close()
