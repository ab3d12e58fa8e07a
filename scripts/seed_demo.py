"""Demo data for `make up`: the clients roster, a realistic handful of deals across stages, a few leads; and
seed 002's group SOP (customer groups in categories A/B/C, their rules, a planned live-stream push).

    ZABOTA_API_TOKEN=… python scripts/seed_demo.py --gateway http://127.0.0.1:8000
    ZABOTA_API_TOKEN=… python scripts/seed_demo.py --clients http://127.0.0.1:8001   # straight to the service

The API token comes from the environment (`ZABOTA_API_TOKEN`, the first of a comma-separated list), never
from a literal in this file, and is never printed (issue 8 §9). `--token` still overrides it, for
older callers, but a token on a command line is visible to every user of the machine (`ps`).

Goes through the gateway's `/api/clients/...` routing; with `--clients` it falls back to the service
itself when the gateway does not answer. Idempotent: payments carry fixed external ids, a payment
answered 200 (already recorded) skips its follow-up steps, and leads are created once (by source).
Some facts are backdated on purpose, so the rules show their effect at once: a breached first call,
a deal in its renewal window, one lost automatically, one renewed, a legal-entity client.

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

ROSTER = [("manager1", "content_manager", "Айгуль Манапова"), ("manager2", "content_manager", "Ержан Бекетов"),
          ("admanager", "ad_manager", "Мадина Ким"), ("growth", "growth", "Иван Петров")]


class Api:
    def __init__(self, bases: list[str], token: str) -> None:
        self.bases, self.token = bases, token

    def call(self, method: str, path: str, body: object | None = None,
             service: str = "clients") -> tuple[int, object]:
        last: Exception | None = None
        for base in self.bases:
            request = urllib.request.Request(
                base.rstrip("/") + f"/api/{service}" + path, method=method,
                data=None if body is None else json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                         "Accept": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                if exc.code in (502, 503, 504) and base is not self.bases[-1]:
                    last = exc
                    continue  # the gateway cannot reach the service: try the service directly
                return exc.code, json.loads(exc.read() or b"null")
            except urllib.error.URLError as exc:
                last = exc
                continue
        raise SystemExit(f"seed_demo: no answer from {', '.join(self.bases)}: {last}")

    def must(self, method: str, path: str, body: object | None = None, service: str = "clients") -> object:
        status, answer = self.call(method, path, body, service)
        if status >= 400:
            raise SystemExit(f"seed_demo: {method} {path} → {status} {answer}")
        return answer


def client(name: str, phone: str, instagram: str, **extra: str) -> dict[str, str]:
    return {"full_name": name, "phone": phone, "instagram": f"https://instagram.com/{instagram}",
            "email": f"{instagram.replace('.', '')}@example.kz", "payer_type": "individual", **extra}


def pay(api: Api, external_id: str, paid_at: datetime, kind: str, who: dict, **extra: object) -> tuple[bool, dict]:
    status, deal = api.call("POST", "/payments", {
        "external_id": external_id, "paid_at": paid_at.isoformat(), "amount": "60000.00", "currency": "KZT",
        "service_kind": kind, "client": who, **extra})
    if status >= 400:
        raise SystemExit(f"seed_demo: payment {external_id} → {status} {deal}")
    return status == 201, deal


def launch(api: Api, deal_id: str, at: datetime, login: str) -> None:
    api.must("POST", f"/deals/{deal_id}/stage", {"stage": "contacted", "at": (at - timedelta(days=2)).isoformat()})
    # The first post (a day after the questionnaire, in time for CL-9) is recorded before the
    # questionnaire: each fact is judged on its own time, and recorded the other way round the
    # questionnaire's answer would first breach CL-9 (its due time passed with no post known yet) and
    # the post would then retract that breach — true, but noisy for a demo.
    api.must("POST", f"/deals/{deal_id}/first-post", {"published_at": at.isoformat()})
    api.must("POST", f"/deals/{deal_id}/questionnaire", {
        "answers": {"niche": "demo", "goals": "more clients from Instagram", "tone": "friendly"},
        "received_at": (at - timedelta(days=1)).isoformat()})
    api.must("POST", f"/deals/{deal_id}/stage", {
        "stage": "project_launched", "at": at.isoformat(), "service_start": at.date().isoformat(),
        "instagram_login": login, "instagram_password": "demo-password"})


def seed(api: Api) -> None:
    for login, role, name in ROSTER:
        api.must("PUT", f"/staff/{login}", {"role": role, "full_name": name, "active": True})
    now = datetime.now(UTC).replace(microsecond=0)

    # Leads (CL-16), once.
    status, leads = api.call("GET", "/leads")
    lead_ids = [lead["id"] for lead in leads if lead.get("source") == "demo"] if status == 200 else []
    if not lead_ids:
        for i, (name, stage) in enumerate([("Гульнара Омарова", "dialog"), ("Тимур Садыков", "warm_lead"),
                                           ("Салтанат Жумабаева", "application"), ("Артём Ли", "application")]):
            lead = api.must("POST", "/leads", {"full_name": name, "instagram": f"@lead{i}", "source": "demo",
                                               "owner": "manager1" if i % 2 == 0 else "manager2",
                                               "at": (now - timedelta(days=5 - i)).isoformat()})
            if stage != "dialog":
                api.must("POST", f"/leads/{lead['id']}/stage", {"stage": stage,
                                                                "at": (now - timedelta(days=2)).isoformat()})
            lead_ids.append(lead["id"])

    # A fresh payment from a lead: first call due within the hour.
    pay(api, "demo-pay-001", now - timedelta(minutes=20), "account_management",
        client("Салтанат Жумабаева", "+7 701 100 0001", "saltanat.flowers"), lead_id=lead_ids[2])
    # Paid three days ago, nobody called: the CL-3 deadline is breached.
    pay(api, "demo-pay-002", now - timedelta(days=3), "account_management",
        client("Болат Искаков", "+7 701 100 0002", "bolat.auto"))
    # Contacted, questionnaire in: concept due, first post due in 3 working days.
    created, deal = pay(api, "demo-pay-003", now - timedelta(days=1, hours=3), "account_management",
                        client("Дана Ахметова", "+7 701 100 0003", "dana.beauty"))
    if created:
        api.must("POST", f"/deals/{deal['deal_id']}/stage", {"stage": "contacted",
                                                             "at": (now - timedelta(days=1, hours=2)).isoformat()})
        api.must("POST", f"/deals/{deal['deal_id']}/questionnaire", {
            "answers": {"niche": "beauty salon", "goals": "bookings"}, "received_at": (now - timedelta(hours=5)).isoformat()})
    # Launched 28 days ago: in the renewal window (CL-11).
    created, deal = pay(api, "demo-pay-004", now - timedelta(days=31), "account_management",
                        client("Асель Нурланова", "+7 701 100 0004", "asel.cakes"))
    if created:
        launch(api, deal["deal_id"], now - timedelta(days=28), "asel.cakes")
    # Launched 45 days ago and never renewed: lost automatically (CL-13).
    created, deal = pay(api, "demo-pay-005", now - timedelta(days=48), "account_management",
                        client("Руслан Ибраев", "+7 701 100 0005", "ruslan.fitness"))
    if created:
        launch(api, deal["deal_id"], now - timedelta(days=45), "ruslan.fitness")
    # A legal entity on complex promotion, launched 10 days ago.
    created, deal = pay(api, "demo-pay-006", now - timedelta(days=13), "complex_promotion",
                        client("Ольга Ким", "+7 701 100 0006", "stroymart.kz", payer_type="legal",
                               company_name="ТОО «СтройМарт»", bin="180540012345"))
    if created:
        launch(api, deal["deal_id"], now - timedelta(days=10), "stroymart.kz")
    # Renewed after a full month (CL-14): paid again 4 days ago.
    created, deal = pay(api, "demo-pay-007", now - timedelta(days=38), "account_management",
                        client("Мария Соколова", "+7 701 100 0007", "maria.dental"))
    if created:
        launch(api, deal["deal_id"], now - timedelta(days=35), "maria.dental")
    pay(api, "demo-pay-007-r1", now - timedelta(days=4), "account_management", {}, deal_id=deal["deal_id"])
    # A refund inside the money-back window (CL-15).
    created, deal = pay(api, "demo-pay-008", now - timedelta(days=6), "account_management",
                        client("Ерлан Тулегенов", "+7 701 100 0008", "erlan.coffee"))
    api.must("POST", f"/deals/{deal['deal_id']}/refunds", {
        "external_id": "demo-refund-008", "amount": "60000.00", "currency": "KZT",
        "refunded_at": (now - timedelta(days=2)).isoformat()})
    print(f"seed_demo: roster of {len(ROSTER)}, {len(lead_ids)} leads, 8 deals")


# Seed 002: category A groups get the knowledge card at 09:00, B the flash-sale link at 15:00, C the live-stream
# poster at 18:00 — each owner reminded at that minute.
GROUPS = [("Клуб любителей кофе", "agent1", "A", ["vip"]), ("Кофе оптом: партнёры", "manager1", "B", ["опт"]),
          ("Новые покупатели", "agent1", "C", ["новые"]), ("Бариста-школа", "agent2", "A", [])]
RULES = [("Группы A: карточка знаний", "A", "09:00", "Доброе утро! Карточка знаний дня: как хранить зёрна."),
         ("Группы B: флеш-распродажа", "B", "15:00", "Только сегодня −20% на дрип-пакеты: https://shop.example.kz/sale"),
         ("Группы C: анонс эфира", "C", "18:00", "Сегодня в 19:00 прямой эфир с обжарщиком — приходите!")]


def seed_groups(api: Api) -> None:
    """Issue 13: hand-entered groups (VK chats where the bot may not post), the three rules, a planned push. Once."""
    status, groups = api.call("GET", "/groups", service="engagement")
    if status != 200:
        print(f"seed_demo: the engagement service did not answer ({status}); no groups")
        return
    if groups.get("total"):
        return
    for n, (title, owner, category, tags) in enumerate(GROUPS, start=1):
        api.must("POST", "/groups", {"channel_id": None, "external_id": f"demo-{n}", "title": title, "owner": owner,
                                     "category": category, "tags": tags}, service="engagement")
    for name, category, at, text in RULES:
        api.must("POST", "/sop-rules", {"name": name, "target": {"category": category}, "time": at,
                                        "weekdays": [1, 2, 3, 4, 5, 6, 7], "content": {"text": text, "attachments": []},
                                        "mode": "manual"}, service="engagement")
    when = (datetime.now(UTC) + timedelta(days=3)).replace(hour=13, minute=0, second=0, microsecond=0)
    api.must("POST", "/calendar", {"at": when.isoformat(), "title": "Эфир с обжарщиком", "target": {"tags": ["vip"]},
                                   "content": {"text": "Через час эфир — ссылка в профиле.", "attachments": []},
                                   "mode": "manual"}, service="engagement")
    print(f"seed_demo: {len(GROUPS)} groups, {len(RULES)} SOP rules, 1 planned push")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", default=None, help="the clients service itself, used if the gateway fails")
    parser.add_argument("--token", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    token = args.token or os.environ.get("ZABOTA_API_TOKEN", "").split(",")[0].strip()
    if not token:
        raise SystemExit("seed_demo: set ZABOTA_API_TOKEN to the API token of the services")
    api = Api([args.gateway] + ([args.clients] if args.clients else []), token)
    seed(api)
    seed_groups(api)
    return 0


if __name__ == "__main__":
    sys.exit(main())
