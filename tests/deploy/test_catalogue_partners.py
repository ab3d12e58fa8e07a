"""Issue 14 §3: the event catalogue marks which events are public, and its AsyncAPI document tells a
partner which NATS account, stream and subject to use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shared.events import Event, event, load_catalogue, registry
from shared.events.catalogue import (
    PARTNER_ACCOUNT,
    PARTNER_STREAM,
    asyncapi,
    is_public,
    partner_subjects,
)

ROOT = Path(__file__).resolve().parents[2]


def test_issue14_domain_events_are_public_by_default_system_and_dead_letters_are_not() -> None:
    catalogue = load_catalogue()
    assert catalogue["clients.deal.paid.v1"].public is True
    assert is_public("clients.deal.paid.v1") and is_public("payroll.month.closed.v1")
    assert catalogue["system.probe.recorded.v1"].public is False
    assert not is_public("system.probe.recorded.v1")
    assert not is_public("deadletter.clients-payroll")
    assert not is_public("clients.nothing.registered.v1")


def test_issue14_an_event_registered_internal_is_not_exported_even_under_a_public_prefix() -> None:
    @event("clients.audit.noted.v1", public=False)
    class AuditNoted(Event, frozen=True, kw_only=True):
        note: str

    try:
        reg = load_catalogue()
        assert not is_public("clients.audit.noted.v1", reg)
        subjects = partner_subjects(reg)
        assert "clients.>" not in subjects, "a wildcard would leak the internal event"
        assert "clients.deal.paid.v1" in subjects and "clients.audit.noted.v1" not in subjects
        channel = asyncapi(reg)["channels"]["clients.audit.noted.v1"]
        assert channel["x-zabota-public"] is False and "x-zabota-partner" not in channel
    finally:
        registry.pop("clients.audit.noted.v1")
    assert "clients.>" in partner_subjects()


@pytest.mark.parametrize("subject", ["clients.deal.paid.v1", "payroll.month.closed.v1"])
def test_issue14_asyncapi_names_the_partner_account_stream_and_subject(subject: str) -> None:
    doc = json.loads((ROOT / "docs" / "events" / "asyncapi.json").read_text("utf-8"))
    channel = doc["channels"][subject]
    assert channel["x-zabota-public"] is True
    assert channel["x-zabota-partner"] == {"account": PARTNER_ACCOUNT, "stream": PARTNER_STREAM, "subject": subject}
    assert f"account `{PARTNER_ACCOUNT}`" in channel["description"]
    operation = doc["operations"][f"partner_receive_{subject.replace('.', '_')}"]
    assert operation["action"] == "receive"
    assert doc["servers"]["partners"]["x-zabota-account"] == PARTNER_ACCOUNT
    assert doc["x-zabota-partners"]["subjects"] == partner_subjects()
    schema = json.loads((ROOT / "docs" / "events" / "schemas" / f"{subject}.json").read_text("utf-8"))
    assert schema["x-zabota-public"] is True


def test_issue14_asyncapi_marks_internal_channels() -> None:
    doc = json.loads((ROOT / "docs" / "events" / "asyncapi.json").read_text("utf-8"))
    assert doc["channels"]["system.probe.recorded.v1"]["x-zabota-public"] is False
    assert doc["channels"]["deadletter.{consumer}"]["x-zabota-public"] is False
    assert not any(k.startswith("partner_receive_system") for k in doc["operations"])
