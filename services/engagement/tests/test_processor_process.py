"""Issue 11: the inbound processor in a process of its own (engagement.processor_process) — `python -m engagement`
on PostgreSQL: webhooks answered by the web process are processed by its child, woken by NOTIFY; a child that
dies is restarted and the readiness says so; the child's commits wake the web process's live inbox."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from engagement.processor_process import CHANGES, Listener, Notifier, wanted
from shared.db import Database
from shared.settings import Settings
from shared.testing import eventually

from .payloads import TG_CONFIG, staff, tg_private

pytestmark = pytest.mark.postgres


def children(parent_port: int) -> list[int]:
    """The pids of the processor processes whose parent is the engagement service on `parent_port`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if b"engagement.processor_process" not in cmdline:
                continue
            ppid = int(next(line for line in (entry / "status").read_text().splitlines()
                            if line.startswith("PPid:")).split()[1])
            parent_env = (Path("/proc") / str(ppid) / "environ").read_bytes().split(b"\0")
        except (OSError, StopIteration):
            continue
        if f"ENGAGEMENT_PORT={parent_port}".encode() in parent_env:
            found.append(int(entry.name))
    return found


def test_the_processor_is_a_process_of_its_own_only_on_postgresql_unless_told_inline() -> None:
    pg = Settings.from_env("engagement", {"DATABASE_URL": "postgresql+asyncpg://u@h/db"})
    lite = Settings.from_env("engagement", {"DATABASE_URL": "sqlite+aiosqlite:///x.db"})
    assert wanted(pg, {}) and not wanted(lite, {})
    assert not wanted(pg, {"ENGAGEMENT_PROCESSOR": "inline"})


async def test_issue11_webhooks_are_processed_by_the_child_which_is_restarted_when_it_dies(
        nats_server, service_process, stand_in, postgres_url) -> None:
    url = service_process("engagement", nats_url=nats_server.url, database_url=postgres_url,
                          env={"TELEGRAM_API_URL": f"{stand_in.url}/tg", "ENGAGEMENT_WORKERS": "1"})
    port = int(url.rsplit(":", 1)[1])
    lead = staff("aliya", "lead", Settings.from_env("engagement", {k: v for k, v in os.environ.items()
                                                                   if not k.endswith("DATABASE_URL")}))
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        created = await http.post("/api/engagement/channels", headers=lead,
                                  json={"kind": "telegram", "name": "bot", "config": TG_CONFIG})
        assert created.status_code == 201, created.text
        hook_url = f"/webhooks/telegram/{created.json()['id']}"
        headers = {"X-Telegram-Bot-Api-Secret-Token": TG_CONFIG["secret_token"], "Content-Type": "application/json"}

        async def webhook(update_id: int, user_id: int) -> None:
            answer = await http.post(hook_url, content=json.dumps(tg_private(update_id, user_id=user_id)),
                                     headers=headers)
            assert answer.status_code == 200

        async def conversations(n: int):
            items = (await http.get("/api/engagement/conversations", headers=lead)).json()
            return items if len(items) >= n else None

        async def child():
            return children(port) or None

        [first] = await eventually(child, timeout=30, message="the processor process")
        await webhook(1, 101)
        await eventually(lambda: conversations(1), timeout=30, message="the child processed the webhook")

        os.kill(first, signal.SIGKILL)   # the child dies: its loop is restarted with a new child

        async def replaced():
            ready = (await http.get("/health/ready")).json()
            loop = ready["loops"]["engagement inbound"]
            new = [pid for pid in children(port) if pid != first]
            return new if loop["restarts"] >= 1 and new else None

        await eventually(replaced, timeout=30, message="a new processor process")
        await webhook(2, 102)
        await eventually(lambda: conversations(2), timeout=30, message="the new child processed the webhook")


async def test_a_notify_reaches_the_listener_across_connections(postgres_url) -> None:
    db = Database(postgres_url)
    heard = asyncio.Event()
    listener = Listener(postgres_url, CHANGES, heard.set)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(heard.wait(), 30)   # the listener calls back once when it starts listening
        heard.clear()
        Notifier(db, CHANGES).wake()
        await asyncio.wait_for(heard.wait(), 30)
    finally:
        listener.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await db.dispose()
