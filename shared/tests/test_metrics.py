"""Issue 14, metrics: `/metrics` of real services (clients and payroll as their own processes, a real
nats-server) after a payment, in Prometheus text format with the names the monitoring manifests expect;
and the payment's journey (clients' request -> payroll's `process`) in both services' ops/journeys."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families
from shared.testing import eventually

TOKEN = {"Authorization": "Bearer dev-token"}
EXPECTED = {"http_server_duration_seconds", "zabota_outbox_backlog", "zabota_outbox_oldest_age_seconds",
            "zabota_relay_published", "zabota_consumer_pending", "zabota_dead_letters", "zabota_timer_backlog",
            "zabota_timer_lateness_seconds", "zabota_db_pool_in_use", "zabota_ready"}


def payment(external_id: str) -> dict:
    return {"external_id": external_id, "paid_at": "2026-03-02T10:00:00+05:00", "amount": "60000.00",
            "currency": "KZT", "service_kind": "account_management",
            "client": {"full_name": "Айгерим Сапарова", "phone": "+7 701 555 0101", "payer_type": "individual",
                       "instagram": "https://instagram.com/aigerim.cakes", "email": "aigerim@example.kz"}}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


async def test_issue14_metrics_of_real_services_after_a_payment(nats_server, service_process) -> None:
    clients = service_process("clients", nats_url=nats_server.url)
    payroll = service_process("payroll", nats_url=nats_server.url)
    async with httpx.AsyncClient(timeout=10) as http:
        paid = await http.post(f"{clients}/api/clients/payments", json=payment(f"m-{uuid.uuid4()}"), headers=TOKEN)
        assert paid.status_code == 201, paid.text
        deal_id = paid.json()["deal_id"]

        async def relayed() -> str | None:
            response = await http.get(f"{clients}/metrics")
            text = response.text
            values = samples(text)
            return text if values.get(("zabota_outbox_backlog", ())) == 0 and values.get(
                ("zabota_relay_published_total", ()), 0) >= 1 else None

        text = await eventually(relayed, message="clients relayed the payment's events")
        response = await http.get(f"{clients}/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        assert EXPECTED <= families(text), EXPECTED - families(text)
        values = samples(text)
        route = (("route", "/api/clients/payments"), ("status", "201"))
        assert values[("http_server_duration_seconds_count", route)] == 1
        assert values[("http_server_duration_seconds_bucket", (("le", "+Inf"), *route))] == 1
        assert values[("zabota_consumer_pending", (("durable", "clients-content"),))] >= 0
        assert values[("zabota_dead_letters_total", (("consumer", "clients-content"),))] == 0
        assert values[("zabota_ready", ())] == 1
        assert values[("zabota_outbox_oldest_age_seconds", ())] == 0
        assert values[("zabota_timer_backlog", ())] >= 0
        assert ("zabota_timer_lateness_seconds", ()) in values and ("zabota_db_pool_in_use", ()) in values
        # Route templates, never raw paths with ids; no `service` label of our own; nothing secret.
        assert deal_id not in text and "dev-token" not in text and 'service="' not in text
        assert 'route="/metrics"' not in text and 'route="/health' not in text
        assert "/metrics" not in (await http.get(f"{clients}/schema/openapi.json")).text

        async def payroll_applied() -> dict | None:
            values = samples((await http.get(f"{payroll}/metrics")).text)
            key = ("zabota_consumer_pending", (("durable", "payroll-clients"),))
            return values if values.get(key) == 0 else None

        values = await eventually(payroll_applied, message="payroll consumed the clients stream")
        assert ("zabota_consumer_pending", (("durable", "payroll-content"),)) in values
        assert values[("zabota_dead_letters_total", (("consumer", "payroll-clients"),))] == 0

        # The journey: clients names the deal on the payment's request and publish spans, payroll on its process.
        async def journey(base: str, service: str) -> list | None:
            found = [j for j in (await http.get(f"{base}/api/{service}/ops/journeys", headers=TOKEN)).json()
                     if j["deal_id"] == deal_id]
            return found or None

        [in_clients] = await eventually(lambda: journey(clients, "clients"), message="clients' journey")
        [in_payroll] = await eventually(lambda: journey(payroll, "payroll"), message="payroll's journey")
        assert in_clients["trace_id"] == in_payroll["trace_id"]
        names = {s["name"] for s in in_clients["steps"]} | {s["name"] for s in in_payroll["steps"]}
        assert "publish clients.deal.paid.v1" in names and "process clients.deal.paid.v1" in names
        assert any(s["name"].startswith("POST") for s in in_clients["steps"])
