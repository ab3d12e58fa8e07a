"""Issue 14 §3: examples/partner_subscriber.py against the real NATS cluster with the shipped accounts.

It receives the services' public events as partner `acme`, acks them, resumes after a restart without
handling an event twice, and rejects what its catalogue copy cannot vouch for (an unknown version, a
payload that breaks the schema) instead of handling it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path

from shared.events import encode
from shared.events.catalogue import PARTNER_STREAM

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "events"


def _example():
    spec = importlib.util.spec_from_file_location("partner_subscriber", ROOT / "examples" / "partner_subscriber.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["partner_subscriber"] = module
    spec.loader.exec_module(module)
    return module


def _subscriber(example, cluster, state: Path, handled_log: list, password: str):
    async def handle(subject: str, event: dict) -> None:
        handled_log.append((subject, event["deal_id"]))

    return example.PartnerSubscriber(
        servers=[f"nats://{n.address}" for n in cluster.nodes], partner="acme",
        password=password, catalogue=example.Catalogue(CATALOGUE), state=state,
        subjects=["clients.>"], handle=handle)


def test_issue14_partner_catalogue_checks_version_and_schema(kit) -> None:
    example = _example()
    catalogue = example.Catalogue(CATALOGUE)
    assert "clients.deal.paid.v1" in catalogue.validators
    assert "system.probe.recorded.v1" not in catalogue.validators, "internal events are not a partner's"
    paid = json.loads(encode(kit.deal_paid("73ff0003")))
    assert catalogue.check("clients.deal.paid.v1", json.dumps({**paid, "new_field": 1}).encode())["new_field"] == 1
    for subject, payload, reason in [
        ("clients.deal.paid.v2", json.dumps(paid).encode(), "version unknown"),
        ("clients.deal.paid.v1", json.dumps({k: v for k, v in paid.items() if k != "amount"}).encode(), "amount"),
        ("clients.deal.paid.v1", b"{not json", "not JSON"),
    ]:
        try:
            catalogue.check(subject, payload)
        except ValueError as exc:
            assert reason in str(exc)
        else:
            raise AssertionError(f"{subject} {payload[:40]!r} accepted")


async def test_issue14_partner_subscriber_acks_resumes_after_restart_and_rejects_unknown_versions(
        nats_cluster, kit, tmp_path: Path) -> None:
    example = _example()
    svc = await kit.services(nats_cluster.services_url)
    await kit.public_stream(nats_cluster.partners_admin_url)
    handled: list = []
    state = tmp_path / "acme-seen.sqlite3"
    try:
        first = [kit.deal_paid("73ff0010"), kit.deal_paid("73ff0011")]
        for evt in first:
            await kit.publish(svc, evt.subject, encode(evt), evt.event_id)
        async with _subscriber(example, nats_cluster, state, handled, kit.PASSWORDS["NATS_PARTNER_ACME_PASSWORD"]) as sub:
            assert await sub.run(max_messages=2, idle_timeout=10) == 2
        assert handled == [("clients.deal.paid.v1", "73ff0010"), ("clients.deal.paid.v1", "73ff0011")]

        # While it is down: one more payment, a version it does not know, and a payload breaking the schema.
        later = kit.deal_paid("73ff0012")
        await kit.publish(svc, later.subject, encode(later), later.event_id)
        await kit.publish(svc, "clients.deal.paid.v9", encode(kit.deal_paid("73ff0013")), "v9-1")
        await kit.publish(svc, "clients.deal.paid.v1", b'{"event_id": "broken-1", "deal_id": "73ff0014"}', "b-1")
        async with _subscriber(example, nats_cluster, state, handled, kit.PASSWORDS["NATS_PARTNER_ACME_PASSWORD"]) as sub:
            assert await sub.run(max_messages=3, idle_timeout=10) == 3
            assert [s for s, _ in sub.rejected] == ["clients.deal.paid.v9", "clients.deal.paid.v1"]
            assert "version unknown" in sub.rejected[0][1]
            # term() is fire-and-forget: wait (bounded) until the server has applied the two rejections.
            async with asyncio.timeout(30):
                while (info := await sub.js.consumer_info(PARTNER_STREAM, "acme")).num_ack_pending:
                    await asyncio.sleep(0.05)
        # Resumed after the last ack: the first two were not handed over again; nothing left pending.
        assert handled[2:] == [("clients.deal.paid.v1", "73ff0012")]
        assert info.num_pending == 0 and info.num_ack_pending == 0
        assert info.config.durable_name == "acme"
    finally:
        await svc.close()


async def test_issue14_partner_subscriber_applies_a_redelivered_event_once(nats_cluster, kit, tmp_path) -> None:
    """A crash between the work and the ack: JetStream redelivers; the event_id store keeps it from re-applying."""
    example = _example()
    svc = await kit.services(nats_cluster.services_url)
    await kit.public_stream(nats_cluster.partners_admin_url)
    handled: list = []
    state = tmp_path / "acme-seen.sqlite3"
    try:
        evt = kit.deal_paid("73ff0020")
        await kit.publish(svc, evt.subject, encode(evt), evt.event_id)
        async with _subscriber(example, nats_cluster, state, handled, kit.PASSWORDS["NATS_PARTNER_ACME_PASSWORD"]) as sub:
            [msg] = await sub.sub.fetch(1, timeout=10)
            await sub.handle(msg.subject, json.loads(msg.data))  # the work was done ...
            sub.seen.add(evt.event_id, msg.subject)
            await msg.nak()  # ... and the process died before its ack: redelivered
            assert await sub.run(max_messages=1, idle_timeout=10) == 1
        assert handled == [("clients.deal.paid.v1", "73ff0020")]
    finally:
        await svc.close()


async def test_issue14_partner_subscriber_over_tls_with_the_agencys_ca(nats_cluster_tls, kit, tmp_path) -> None:
    """The prod overlay's NATS requires TLS: the example connects with ZABOTA_NATS_CA's file (`ca_file`)."""
    from shared.bus import tls_context

    example = _example()
    trusted = tls_context({"NATS_CA": str(nats_cluster_tls.ca_file)})
    svc = await kit.services(nats_cluster_tls.services_url, tls=trusted)
    await kit.public_stream(nats_cluster_tls.partners_admin_url, tls=trusted)
    handled: list = []
    try:
        evt = kit.deal_paid("73ff0030")
        await kit.publish(svc, evt.subject, encode(evt), evt.event_id)
        subscriber = _subscriber(example, nats_cluster_tls, tmp_path / "acme-seen.sqlite3", handled,
                                 kit.PASSWORDS["NATS_PARTNER_ACME_PASSWORD"])
        subscriber.servers = [f"tls://{n.address}" for n in nats_cluster_tls.nodes]
        subscriber.ca_file = str(nats_cluster_tls.ca_file)
        async with subscriber as sub:
            assert await sub.run(max_messages=1, idle_timeout=10) == 1
            assert sub.nc.connected_url.scheme == "tls"
        assert handled == [("clients.deal.paid.v1", "73ff0030")]
    finally:
        await svc.close()
