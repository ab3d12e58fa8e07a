"""The engagement loops (inbound processor, reply sender, push sender, mailbox) let a database failure reach their
supervisor: restarted with back-off and named by /health/ready until they can run again — before, each caught
it, logged a line and went on, so readiness said all was well while no reply went out."""

from __future__ import annotations

from engagement.app import create_app
from litestar.testing import AsyncTestClient
from shared.db import Database
from shared.testing import eventually, make_settings
from sqlalchemy import text

from .conftest import channel_settings


async def test_the_reply_sender_that_cannot_read_its_queue_is_named_by_readiness_until_it_can(
        tmp_path, nats_server) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'engagement.db'}"
    app = create_app(settings=make_settings("engagement", database_url=url, nats_url=nats_server.url),
                     background=True, channels=channel_settings())
    async with AsyncTestClient(app) as client:
        async def ready() -> bool:
            return (await client.get("/health/ready")).status_code == 200

        await eventually(ready, timeout=60, message="ready")
        db = Database(url)
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE messages RENAME TO messages_away"))

        async def unready() -> dict | None:
            response = await client.get("/health/ready")
            body = response.json()
            return body if response.status_code == 503 and "engagement sender" in body["failing"] else None

        body = await eventually(unready, timeout=60, message="503 naming the sender")
        assert body["checks"]["database"] is True
        assert "messages" in body["loops"]["engagement sender"]["error"]
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE messages_away RENAME TO messages"))
        await eventually(ready, timeout=60, message="ready again")
        await db.dispose()
