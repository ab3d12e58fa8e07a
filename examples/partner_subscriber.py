"""A partner's subscriber to Zabota's public events (issue 14): copy it, replace `handle`.

    pip install nats-py jsonschema
    ZABOTA_NATS_URL=tls://nats.partners.example.com:4222 ZABOTA_NATS_CA=./zabota-ca.crt \
    ZABOTA_PARTNER=acme ZABOTA_PARTNER_PASSWORD=... \
        python partner_subscriber.py --catalogue ./events --subject clients.deal.paid.v1

(`ZABOTA_NATS_CA`: the CA file the agency gave you; its NATS requires TLS from outside its cluster —
deploy/README.md "Partners outside the cluster". Unset: the system's CAs, or plain NATS on a test bench.)

What it does, and why:
- connects as the partner's own user of the NATS account PARTNERS (read-only), with the inbox prefix
  `_INBOX_<partner>` that its permissions allow (nobody else sees its replies);
- reads the JetStream stream PUBLIC through a **durable** pull consumer named after the partner: the
  server remembers what was acknowledged, so after a restart (or a crash) it resumes where it stopped;
- **verifies each message against the event catalogue** it was built for (`docs/events`, downloadable
  from the gateway at /docs/events): the subject must be a public `<service>.<aggregate>.<event>.v<N>`
  the catalogue knows (a newer version `v<N+1>` means: update your catalogue copy), and the payload must
  match that version's JSON Schema. A message that fails is terminated (`term`: never redelivered) and
  reported, not silently dropped; fields the catalogue does not know are allowed (events only grow);
- acknowledges a message only after `handle` returned, and remembers each `event_id` in a small SQLite
  file, so a message redelivered after a crash between `handle` and the ack is not applied twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sqlite3
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

log = logging.getLogger("partner_subscriber")
STREAM = "PUBLIC"
SUBJECT_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*$")
Handler = Callable[[str, dict[str, Any]], Awaitable[None]]


class Catalogue:
    """The JSON Schemas of the event catalogue (the folder docs/events, or its copy)."""

    def __init__(self, folder: Path) -> None:
        self.validators: dict[str, jsonschema.protocols.Validator] = {}
        for path in sorted((folder / "schemas").glob("*.json")):
            schema = json.loads(path.read_text("utf-8"))
            if schema.get("x-zabota-public"):
                self.validators[schema["title"]] = jsonschema.Draft202012Validator(schema)

    def check(self, subject: str, payload: bytes) -> dict[str, Any]:
        """The decoded event, or ValueError saying why it cannot be trusted."""
        if not SUBJECT_RE.match(subject):
            raise ValueError(f"{subject}: not <service>.<aggregate>.<event>.v<N>")
        validator = self.validators.get(subject)
        if validator is None:
            known = sorted(s for s in self.validators if s.rsplit(".", 1)[0] == subject.rsplit(".", 1)[0])
            raise ValueError(f"{subject}: version unknown to this catalogue (known: {', '.join(known) or 'none'});"
                             " update the catalogue copy")
        try:
            data = json.loads(payload)
        except ValueError as exc:
            raise ValueError(f"{subject}: not JSON ({exc})") from exc
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            raise ValueError(f"{subject}: " + "; ".join(f"{'/'.join(map(str, e.path)) or '.'}: {e.message}"
                                                         for e in errors))
        return data


class Seen:
    """event_ids already handled (SQLite), so a redelivery after a crash is applied once."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY, subject TEXT)")

    def __contains__(self, event_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM seen WHERE event_id = ?", (event_id,)).fetchone() is not None

    def add(self, event_id: str, subject: str) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO seen VALUES (?, ?)", (event_id, subject))

    def close(self) -> None:
        self.db.close()


@dataclass
class PartnerSubscriber:
    servers: list[str]
    partner: str
    password: str
    catalogue: Catalogue
    state: Path
    subjects: list[str] = field(default_factory=list)  # empty: every public subject
    handle: Handler | None = None
    ca_file: str | None = None   # the agency's CA: TLS, verifying its NATS servers
    handled: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    async def __aenter__(self) -> PartnerSubscriber:
        self.seen = Seen(self.state)
        tls = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        self.nc = await nats.connect(self.servers, user=self.partner, password=self.password,
                                     inbox_prefix=f"_INBOX_{self.partner}", name=f"partner-{self.partner}",
                                     max_reconnect_attempts=-1, tls=tls)
        self.js = self.nc.jetstream(timeout=30)
        config = ConsumerConfig(durable_name=self.partner, ack_policy=AckPolicy.EXPLICIT,
                                deliver_policy=DeliverPolicy.ALL, ack_wait=60, max_deliver=20)
        if len(self.subjects) == 1:
            config.filter_subject = self.subjects[0]
        elif self.subjects:
            config.filter_subjects = self.subjects
        # Binds to the durable if it exists (resuming after its last ack), else creates it.
        self.sub = await self.js.pull_subscribe_bind(durable=self.partner, stream=STREAM) \
            if await self._exists() else await self._create(config)
        return self

    async def _exists(self) -> bool:
        try:
            await self.js.consumer_info(STREAM, self.partner)
            return True
        except nats.js.errors.NotFoundError:
            return False

    async def _create(self, config: ConsumerConfig):
        await self.js.add_consumer(STREAM, config)
        return await self.js.pull_subscribe_bind(durable=self.partner, stream=STREAM)

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()  # no ack is pending: each message is acked (or termed) before the next fetch
        self.seen.close()

    async def process(self, msg) -> None:
        try:
            event = self.catalogue.check(msg.subject, msg.data)
        except ValueError as exc:
            log.error("rejected %s: %s", msg.subject, exc)
            self.rejected.append((msg.subject, str(exc)))
            await msg.term()  # never redelivered; the reason is in the log (and in `rejected`)
            return
        event_id = event["event_id"]
        if event_id not in self.seen:
            if self.handle is not None:
                await self.handle(msg.subject, event)
            self.handled.append((msg.subject, event))
            self.seen.add(event_id, msg.subject)
        await msg.ack_sync()  # after the work: a crash before this line means a redelivery, deduplicated above

    async def run(self, max_messages: int | None = None, idle_timeout: float = 5.0) -> int:
        """Process messages until `max_messages` (None: forever); returns how many were processed."""
        count = 0
        while max_messages is None or count < max_messages:
            batch = 10 if max_messages is None else min(10, max_messages - count)
            try:
                msgs = await self.sub.fetch(batch, timeout=idle_timeout)
            except NatsTimeout:
                continue
            for msg in msgs:
                await self.process(msg)
                count += 1
        return count


async def _print(subject: str, event: dict[str, Any]) -> None:
    print(json.dumps({"subject": subject, **event}, ensure_ascii=False), flush=True)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "events",
                        help="folder of the event catalogue (asyncapi.json, schemas/)")
    parser.add_argument("--subject", action="append", default=[], help="a public subject (repeat); default all")
    parser.add_argument("--state", type=Path, default=Path("partner-seen.sqlite3"), help="event_ids handled")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    subscriber = PartnerSubscriber(
        servers=os.environ.get("ZABOTA_NATS_URL", "nats://127.0.0.1:4222").split(","),
        partner=os.environ["ZABOTA_PARTNER"], password=os.environ["ZABOTA_PARTNER_PASSWORD"],
        catalogue=Catalogue(args.catalogue), state=args.state, subjects=args.subject, handle=_print,
        ca_file=os.environ.get("ZABOTA_NATS_CA") or None)
    async with subscriber:
        await subscriber.run()


if __name__ == "__main__":
    asyncio.run(main())
