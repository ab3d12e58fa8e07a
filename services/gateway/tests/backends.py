"""Real clients and payroll services for page tests: each a process of its own on a free port (its
own SQLite file, the test's nats-server), and helpers that act on them as an integration would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from shared.testing import default_settings, staff_headers

TOKEN = {"Authorization": "Bearer dev-token"}


def serve_clients(start_service, nats_url: str, database_url: str | None = None) -> str:
    """A real clients service in its own process (the gateway's tests never import another service)."""
    return start_service("clients", nats_url=nats_url, database_url=database_url)


def serve_payroll(start_service, nats_url: str) -> str:
    return start_service("payroll", nats_url=nats_url)


class Backend:
    """Calls one service's API as an integration (bearer only) or as a staff member."""

    def __init__(self, base_url: str, service: str) -> None:
        self.base_url, self.service = base_url, service

    def call(self, method: str, path: str, json: Any = None, as_: tuple[str, str] | None = None,
             expect: tuple[int, ...] = (200, 201, 202)) -> Any:
        headers = staff_headers(as_[0], as_[1], default_settings(self.service)) if as_ else dict(TOKEN)
        response = httpx.request(method, f"{self.base_url}/api/{self.service}{path}", json=json, headers=headers,
                                 timeout=30)
        assert response.status_code in expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None


def payment(external_id: str, manager: str = "manager1", *, name: str = "Айгерим Сапарова",
            kind: str = "account_management", payer: str = "individual", paid_at: datetime | None = None,
            amount: str = "60000.00") -> dict[str, Any]:
    client = {"full_name": name, "phone": f"+7 701 {abs(hash(external_id)) % 10_000_000:07d}",
              "instagram": "https://instagram.com/aigerim.cakes", "email": "client@example.kz", "payer_type": payer}
    if payer == "legal":
        client |= {"company_name": "ТОО «Сладкий дом»", "bin": "123456789012"}
    return {"external_id": external_id, "paid_at": (paid_at or datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "amount": amount, "currency": "KZT", "service_kind": kind, "client": client,
            "responsible_manager": manager}


def roster(clients: Backend) -> None:
    for login, role in (("manager1", "content_manager"), ("manager2", "content_manager"),
                        ("admanager", "ad_manager"), ("growth", "growth")):
        clients.call("PUT", f"/staff/{login}", {"role": role, "full_name": login})
