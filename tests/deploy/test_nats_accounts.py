"""Issue 14 §NATS: the production NATS configuration, run for real (3 nodes, the shipped accounts).

The services' account publishes; the PARTNERS account receives only the public subjects, in its stream
PUBLIC; a partner user has its own durable consumer and nothing else: no publish on an event subject,
no dead letters, no stream administration.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from nats.js.api import ConsumerConfig
from nats.js.errors import APIError
from shared.events import encode, load_catalogue
from shared.events.catalogue import PARTNER_ACCOUNT, PARTNER_STREAM, is_public, partner_subjects
from shared.events.system import ProbeRecorded

NATS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "components" / "nats"
ACME_INBOX = "_INBOX_acme"


def _conf_patterns(kind: str) -> list[str]:
    text = (NATS_DIR / "accounts.conf").read_text("utf-8")
    if kind == "exports":
        return re.findall(r'\{ stream: "([^"]+)", accounts: \[PARTNERS\] \}', text)
    return re.findall(r'\{ stream: \{ account: SERVICES, subject: "([^"]+)" \} \}', text)


def _matches(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


def test_issue14_partners_account_imports_exactly_the_catalogue_public_subjects() -> None:
    expected = partner_subjects()
    assert _conf_patterns("exports") == expected, "accounts.conf SERVICES exports != catalogue public subjects"
    assert _conf_patterns("imports") == expected, "accounts.conf PARTNERS imports != catalogue public subjects"
    stream = json.loads((NATS_DIR / "public-stream.json").read_text("utf-8"))
    assert stream["name"] == PARTNER_STREAM and stream["subjects"] == expected
    assert PARTNER_ACCOUNT in (NATS_DIR / "accounts.conf").read_text("utf-8")
    for subject in load_catalogue():
        exported = any(_matches(p, subject) for p in expected)
        assert exported == is_public(subject), f"{subject}: exported={exported}, public={is_public(subject)}"
    for internal in ("deadletter.clients-payroll", "system.probe.recorded.v1", "payroll.line.recorded.v1"):
        assert not any(_matches(p, internal) for p in expected), internal


async def test_issue14_partner_receives_deal_paid_from_the_services_account_and_nothing_internal(
        nats_cluster, kit) -> None:
    svc = await kit.services(nats_cluster.services_url)
    await kit.public_stream(nats_cluster.partners_admin_url)
    acme = await kit.Conn().open(nats_cluster.acme_url, inbox_prefix=ACME_INBOX)
    try:
        js = acme.nc.jetstream(timeout=10)
        sub = await kit.answered(
            lambda: js.pull_subscribe("clients.deal.paid.v1", durable="acme", stream=PARTNER_STREAM))
        # Published by the services, in this order: a dead letter, an internal event, then the deal's payment.
        await kit.publish(svc, "deadletter.payroll-clients", b'{"secret": "salary"}', "dl-1")
        probe = ProbeRecorded(seq=1)
        await kit.publish(svc, probe.subject, encode(probe), probe.event_id)
        paid = kit.deal_paid("73ff0001")
        await kit.publish(svc, paid.subject, encode(paid), paid.event_id)

        [msg] = await sub.fetch(1, timeout=30)
        assert msg.subject == "clients.deal.paid.v1"
        assert json.loads(msg.data)["deal_id"] == "73ff0001"
        assert msg.headers["Nats-Msg-Id"] == paid.event_id
        await msg.ack_sync()
        # PUBLIC holds only what was public: the dead letter and the probe never reached the partners' account.
        info = await kit.answered(lambda: js.stream_info(PARTNER_STREAM))
        assert info.state.messages == 1
        assert info.config.num_replicas == kit.STREAM_REPLICAS
        services_info = await kit.answered(lambda: svc.nc.jetstream(timeout=10).stream_info("CLIENTS"))
        assert services_info.config.num_replicas == kit.STREAM_REPLICAS
        assert len(services_info.cluster.replicas or []) == kit.STREAM_REPLICAS - 1
    finally:
        await acme.close()
        await svc.close()


async def test_issue14_partner_cannot_publish_to_clients(nats_cluster, kit) -> None:
    svc = await kit.services(nats_cluster.services_url)
    await kit.public_stream(nats_cluster.partners_admin_url)
    acme = await kit.Conn().open(nats_cluster.acme_url, inbox_prefix=ACME_INBOX)
    try:
        forged = kit.deal_paid("forged")
        await acme.nc.publish("clients.deal.paid.v1", encode(forged))
        assert "clients.deal.paid.v1" in await acme.violation('Publish to "clients.deal.paid.v1"')
        # Nothing was stored on either side.
        assert (await kit.answered(lambda: svc.nc.jetstream(timeout=10).stream_info("CLIENTS"))).state.messages == 0
        admin = await kit.Conn().open(nats_cluster.partners_admin_url)
        assert (await kit.answered(lambda: admin.nc.jetstream(timeout=10).stream_info(PARTNER_STREAM))).state.messages == 0
        await admin.close()
    finally:
        await acme.close()
        await svc.close()


async def test_issue14_partner_cannot_read_deadletters(nats_cluster, kit) -> None:
    svc = await kit.services(nats_cluster.services_url)
    await kit.public_stream(nats_cluster.partners_admin_url)
    acme = await kit.Conn().open(nats_cluster.acme_url, inbox_prefix=ACME_INBOX)
    try:
        await acme.nc.subscribe("deadletter.>")
        assert await acme.violation('Subscription to "deadletter.>"')
        # A durable filtered on dead letters gets nothing: PUBLIC never receives them (they are not exported).
        js = acme.nc.jetstream(timeout=10)
        try:
            await kit.answered(lambda: js.add_consumer(
                PARTNER_STREAM, ConsumerConfig(durable_name="acme", filter_subject="deadletter.>")))
        except APIError:
            pass  # a server that refuses a filter outside the stream's subjects is fine too
        else:
            await kit.publish(svc, "deadletter.payroll-clients", b'{"secret": "salary"}', "dl-1")
            paid = kit.deal_paid("73ff0002")
            await kit.publish(svc, paid.subject, encode(paid), paid.event_id)
            admin = await kit.Conn().open(nats_cluster.partners_admin_url)
            admin_js = admin.nc.jetstream(timeout=10)

            async def stored() -> int:
                return (await kit.answered(lambda: admin_js.stream_info(PARTNER_STREAM))).state.messages

            async with asyncio.timeout(60):  # the deal, published after the dead letter, has arrived
                while await stored() < 1:
                    await asyncio.sleep(0.05)
            assert await stored() == 1
            await admin.close()
            assert (await kit.answered(lambda: js.consumer_info(PARTNER_STREAM, "acme"))).num_pending == 0
        # Nor can it read the services' DEADLETTER stream: that stream is in another account.
        with pytest.raises(Exception):  # noqa: B017 - denied publish: no answer (timeout), never a reply
            await acme.nc.jetstream(timeout=2).stream_info("DEADLETTER")
        assert await acme.violation('"$JS.API.STREAM.INFO.DEADLETTER"')
    finally:
        await acme.close()
        await svc.close()


async def test_issue14_partner_cannot_delete_a_stream_nor_another_partners_consumer(nats_cluster, kit) -> None:
    svc = await kit.services(nats_cluster.services_url)
    await kit.public_stream(nats_cluster.partners_admin_url)
    acme = await kit.Conn().open(nats_cluster.acme_url, inbox_prefix=ACME_INBOX)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the request is denied, so it never gets an answer
            await acme.nc.jetstream(timeout=2).delete_stream(PARTNER_STREAM)
        assert await acme.violation('"$JS.API.STREAM.DELETE.PUBLIC"')
        with pytest.raises(Exception):  # noqa: B017
            await acme.nc.jetstream(timeout=2).add_consumer(
                PARTNER_STREAM, ConsumerConfig(durable_name="globex", name="globex"))
        assert await acme.violation("CONSUMER.CREATE.PUBLIC.globex")
        admin = await kit.Conn().open(nats_cluster.partners_admin_url)
        assert (await kit.answered(lambda: admin.nc.jetstream(timeout=10).stream_info(PARTNER_STREAM))).config.name == PARTNER_STREAM
        await admin.close()
    finally:
        await acme.close()
        await svc.close()


async def test_issue14_partner_connects_over_tls_with_the_agencys_ca_and_nothing_connects_without_it(
        nats_cluster_tls, kit, monkeypatch) -> None:
    """The prod overlay's tls.conf run for real: TLS is required on the client port. A partner with the
    agency's CA receives a deal's payment; the services connect through shared.bus with NATS_CA; a client
    that does not trust the CA (or speaks plain NATS) is refused before it can authenticate."""
    import ssl

    from shared.bus import Bus, tls_context

    ca = str(nats_cluster_tls.ca_file)
    trusted = tls_context({"NATS_CA": ca})
    svc = await kit.services(nats_cluster_tls.services_url, tls=trusted)
    await kit.public_stream(nats_cluster_tls.partners_admin_url, tls=trusted)
    acme = await kit.Conn().open(nats_cluster_tls.acme_url, inbox_prefix=ACME_INBOX, tls=trusted)
    monkeypatch.setenv("NATS_CA", ca)
    bus = Bus(nats_cluster_tls.services_url[0], "zabota-tls-test", replicas=kit.STREAM_REPLICAS)
    try:
        await bus.connect(retry_forever=False)                       # what a service does at start
        assert bus.is_connected and bus.nc.connected_url.hostname == "127.0.0.1"
        js = acme.nc.jetstream(timeout=10)
        sub = await kit.answered(
            lambda: js.pull_subscribe("clients.deal.paid.v1", durable="acme", stream=PARTNER_STREAM))
        paid = kit.deal_paid("73ff00tls")
        await kit.publish(svc, paid.subject, encode(paid), paid.event_id)
        [msg] = await sub.fetch(1, timeout=30)
        assert json.loads(msg.data)["deal_id"] == "73ff00tls"
        await msg.ack_sync()

        for refused in ({}, {"tls": ssl.create_default_context()}):   # plain NATS, or a CA it does not know
            with pytest.raises(ssl.SSLError) as caught:
                await kit.Conn().open(nats_cluster_tls.acme_url[:1], **refused)
            # A plain client is upgraded by the server's tls_required and, like one with only the system CAs,
            # cannot verify the agency's certificate: no password is ever sent in the clear.
            assert isinstance(caught.value, ssl.SSLCertVerificationError), repr(caught.value)
    finally:
        if bus.nc is not None:
            await bus.nc.close()
        await acme.close()
        await svc.close()
