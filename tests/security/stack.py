"""The whole system as production runs it, for the security suite: a real nats-server, the four services
and the gateway, each its own process on a free port with its own SQLite file, every secret set
(identity.stack_env), demo staff in the gateway plus the roles the demo team lacks.

`Stack.seed()` then creates the objects the attacks aim at, all owned by someone else: a launched deal
of manager2 with Instagram credentials, its tasks and deadline, an attachment, a lead of manager2, an
import, manager2's payroll employment, its first content plan with an item, and in the care inbox the
deal's Telegram, VK and Instagram channel accounts (the care agent serves another account), a conversation
on the Telegram one and a tag rule.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from shared.testing import NatsServer, ServiceProcesses

from .identity import SECRET_KEY, integration_headers, stack_env, staff_headers

# The foreign deal's channel accounts in the care inbox (issue 11's config keys); the webhook secrets are what
# the platforms send back on every delivery.
TG_SECRET = "sec-suite-telegram-secret-token-51c7"
VK_SECRET = "sec-suite-vk-callback-secret-93d2"
VK_GROUP = 171104499
IG_USER = "17841400000099001"
CHANNEL_CONFIGS: dict[str, dict[str, Any]] = {
    "telegram": {"bot_token": "7000000099:AAH-sec-suite-bot-token", "secret_token": TG_SECRET},
    "vk": {"group_id": VK_GROUP, "access_token": "vk1.a.sec-suite-token", "secret": VK_SECRET,
           "confirmation": "5ec5u17e"},
    "instagram": {"ig_user_id": IG_USER, "access_token": "IGAA-sec-suite-token"},
}
FOREIGN_MESSAGE = "Foreign Inbox Message Zqm"
WEBFORM_SLUG = "sec-suite-form"


def webform_token(slug: str) -> str:
    """A valid token of the public website form (gateway.pages.webform), as its page hands out."""
    from gateway.pages.webform import form_token

    return form_token(SECRET_KEY, slug)
FOREIGN_CAPTION = "Foreign Item Caption Zqc"

SERVICES = ("clients", "content", "engagement", "payroll")
DEMO_PASSWORD = "demo"
EXTRA_PASSWORD = "long-password-1"
# The login of each staff role (DOMAIN.md "Roles"); monitor1, senior1, growth2 are created by the stack.
# growth2 is a growth specialist of no deal of manager2's (the demo `growth` may become the foreign deal's own
# growth specialist when a questionnaire arrives for it, CL-6, and then rightly sees it).
ROLE_LOGINS = {"lead": "lead", "content_manager": "manager1", "ad_manager": "admanager", "growth": "growth2",
               "care_agent": "agent1", "monitoring": "monitor1", "senior_agent": "senior1", "analyst": "analyst"}
FOREIGN_MANAGER = "manager2"
FOREIGN_NAME = "Foreign Client Zqx"
FOREIGN_PASSWORD = "Foreign-Instagram-Secret-7731"
FOREIGN_LEAD_NAME = "Foreign Lead Zqy"
TZ = ZoneInfo("Asia/Almaty")
EXTRA_LOGINS = {"monitor1": "monitoring", "senior1": "senior_agent", "growth2": "growth"}


def csrf_of(html: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def payment_body(external_id: str, manager: str = FOREIGN_MANAGER, *, name: str = FOREIGN_NAME,
                 kind: str = "account_management", client: dict[str, Any] | None = None,
                 paid_at: datetime | None = None) -> dict[str, Any]:
    digits = int.from_bytes(external_id.encode(), "big") % 10_000_000
    card = {"full_name": name, "phone": f"+7 701 {digits:07d}", "instagram": "https://instagram.com/zqx.shop",
            "email": "client@example.kz", "payer_type": "individual"}
    card |= client or {}
    return {"external_id": external_id, "paid_at": (paid_at or datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "amount": "60000.00", "currency": "KZT", "service_kind": kind, "client": card,
            "responsible_manager": manager}


@dataclass
class Foreign:
    """Objects owned by manager2 (nobody in the matrix but the lead, the analyst and integrations may see them)."""

    deal_id: str = ""
    client_id: str = ""
    task_id: str = ""
    deadline_id: str = ""
    attachment_id: str = ""
    lead_id: str = ""
    import_id: str = ""
    month: str = ""
    ids: dict[str, str] = field(default_factory=dict)
    # content objects of the foreign deal (plan, item, …): the real ones where the content service made them,
    # else ids that do not exist (the route then refuses everyone, which the matrix also counts)
    content_ids: dict[str, str] = field(default_factory=dict)
    # care inbox objects of the foreign deal (channel accounts, a conversation, a tag rule)
    engagement_ids: dict[str, str] = field(default_factory=dict)


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.nats = NatsServer(root / "jetstream")
        self.processes = ServiceProcesses(root / "services")
        self.urls: dict[str, str] = {}
        self.gateway = ""
        self.foreign = Foreign()

    # ------------------------------------------------------------------ processes

    def start(self) -> Stack:
        self.nats.start()
        env = stack_env()
        for service in SERVICES:
            self.urls[service] = self.processes.start(service, nats_url=self.nats.url, env=env)
        gateway_env = {**env, **{f"{s.upper()}_URL": url for s, url in self.urls.items()}}
        self.gateway = self.processes.start("gateway", nats_url=self.nats.url, env=gateway_env)
        return self

    def stop(self) -> None:
        self.processes.stop_all()
        self.nats.stop()

    def logs(self) -> dict[str, str]:
        return {str(log.parent.name): log.read_text(errors="replace") for _proc, log in self.processes.procs}

    # ------------------------------------------------------------------ calls

    def api(self, service: str, method: str, path: str, *, headers: dict[str, str] | None = None,
            expect: tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> Any:
        """A call to a service on its own port (default: as an integration); asserts the status."""
        response = httpx.request(method, f"{self.urls[service]}/api/{service}{path}",
                                 headers=headers if headers is not None else integration_headers(),
                                 timeout=30, **kwargs)
        assert response.status_code in expect, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response.json() if response.content and "json" in response.headers.get("content-type", "") else None

    def browser(self, role: str | None = None) -> httpx.Client:
        """An HTTP client on the gateway, signed in as the role's login (None: anonymous)."""
        client = httpx.Client(base_url=self.gateway, timeout=30, follow_redirects=False)
        if role is not None:
            self.sign_in(client, ROLE_LOGINS[role])
        return client

    def sign_in(self, client: httpx.Client, login: str) -> None:
        page = client.get("/login")
        password = EXTRA_PASSWORD if login in EXTRA_LOGINS else DEMO_PASSWORD
        response = client.post("/login", data={"login": login, "password": password, "_csrf": csrf_of(page.text),
                                               "next": "/"})
        assert response.status_code in (200, 303), (login, response.status_code, response.text[:300])

    @staticmethod
    def csrf(client: httpx.Client) -> str:
        return csrf_of(client.get("/").text)

    # ------------------------------------------------------------------ data

    def seed(self) -> Stack:
        # Staff accounts the demo team lacks, created by the lead through the staff page.
        lead = self.browser("lead")
        token = self.csrf(lead)
        for login, role in EXTRA_LOGINS.items():
            created = lead.post("/staff", data={"_csrf": token, "login": login, "display_name": login,
                                                "role": role, "password": EXTRA_PASSWORD, "language": "en"})
            assert created.status_code in (200, 303), created.text[:300]
        lead.close()
        for login, role in (("manager1", "content_manager"), ("manager2", "content_manager"),
                            ("admanager", "ad_manager"), ("growth", "growth")):
            self.api("clients", "PUT", f"/staff/{login}", json={"role": role, "full_name": login})

        f = self.foreign
        deal = self.api("clients", "POST", "/payments", json=payment_body("sec-foreign-1"))
        f.deal_id = deal["id"]
        f.client_id = deal["client_id"]
        f.task_id = deal["tasks"][0]["id"]
        f.deadline_id = deal["deadlines"][0]["id"]
        paid_at = datetime.now(UTC) - timedelta(minutes=5)
        self.api("clients", "POST", f"/deals/{f.deal_id}/stage", json={"stage": "contacted"})
        self.api("clients", "POST", f"/deals/{f.deal_id}/stage", json={
            "stage": "project_launched", "service_start": paid_at.astimezone(TZ).date().isoformat(),
            "instagram_login": "zqx.shop", "instagram_password": FOREIGN_PASSWORD})
        attachment = self.api("clients", "POST", f"/deals/{f.deal_id}/attachments",
                              files={"file": ("call.mp3", b"ID3" + b"\0" * 512, "audio/mpeg")})
        f.attachment_id = attachment["id"]
        lead = self.api("clients", "POST", "/leads", json={"full_name": FOREIGN_LEAD_NAME, "phone": "+77010009999",
                                                           "owner": FOREIGN_MANAGER, "source": "instagram"})
        f.lead_id = lead["id"]
        job = self.api("clients", "POST", "/imports", files={"file": ("a.csv", IMPORT_HEADER.encode(), "text/csv")})
        f.import_id = job["id"]
        f.month = datetime.now(TZ).strftime("%Y-%m")
        self.api("payroll", "PUT", f"/employees/{FOREIGN_MANAGER}",
                 json={"role": "content_manager", "employed_from": "2020-01-01"})
        f.ids = {"deal_id": f.deal_id, "client_id": f.client_id, "task_id": f.task_id, "deadline_id": f.deadline_id,
                 "attachment_id": f.attachment_id, "lead_id": f.lead_id, "import_id": f.import_id,
                 "month": f.month, "manager": FOREIGN_MANAGER, "login": FOREIGN_MANAGER, "letter_id": "1",
                 "token": "not-a-signed-link", "name": "clients.deal.paid.v1.json"}
        f.content_ids = self._seed_content(f.deal_id)
        f.engagement_ids = self._seed_engagement(f.deal_id)
        return self

    def _seed_engagement(self, deal_id: str) -> dict[str, str]:
        """The foreign deal's channel accounts (made by the lead: only the lead creates them), the care agent
        serving another account (EN-6), a Telegram conversation on the foreign account, a tag rule (EN-7)."""
        lead = staff("lead", "engagement")
        ids: dict[str, str] = {}
        for kind, config in CHANNEL_CONFIGS.items():
            channel = self.api("engagement", "POST", "/channels", headers=lead,
                               json={"kind": kind, "name": f"Foreign {kind}", "config": config, "deal_id": deal_id})
            ids[f"{kind}_channel_id"] = channel["id"]
        ids["channel_id"] = ids["telegram_channel_id"]
        # The agency's website form answering through an e-mail channel (its mailbox unreachable here).
        mailbox = {"address": "support@agency.test", "imap_host": "127.0.0.1", "imap_port": 9, "smtp_host": "127.0.0.1",
                   "smtp_port": 9, "username": "support@agency.test", "password": "sec-suite-mail-password",
                   "tls": False}
        email = self.api("engagement", "POST", "/channels", headers=lead,
                         json={"kind": "email", "name": "Agency mail", "config": mailbox})
        form = self.api("engagement", "POST", "/channels", headers=lead,
                        json={"kind": "webform", "name": "Agency form",
                              "config": {"email_channel_id": email["id"], "slug": WEBFORM_SLUG}})
        ids["email_channel_id"], ids["webform_channel_id"], ids["slug"] = email["id"], form["id"], WEBFORM_SLUG
        ids["webform_token"] = webform_token(WEBFORM_SLUG)
        self.api("engagement", "PUT", f"/staff/{ROLE_LOGINS['care_agent']}/accounts",
                 json={"accounts": ["another-clients-account"]})
        sent = self.telegram(ids["channel_id"], telegram_update(990001, 7770001, FOREIGN_MESSAGE))
        assert sent.status_code == 200, sent.text
        found = self.wait_messages(ids["channel_id"], lambda texts: FOREIGN_MESSAGE in texts)
        assert found, "the foreign Telegram message never became a conversation"
        ids["conversation_id"] = self.api("engagement", "GET", "/conversations",
                                          params={"channel": ids["channel_id"]})[0]["id"]
        rule = self.api("engagement", "POST", "/tag-rules", json={"kind": "keyword", "value": "zqxkeyword",
                                                                  "tag": "foreign"})
        ids["rule_id"] = rule["id"]
        # Monitoring (issue 11): a mention entered by hand, a watched feed (nothing listens there) and a keyword
        # rule, all on the foreign account.
        ids["mention_id"] = self.api("engagement", "POST", "/mentions", headers=lead, json={
            "url": "https://forum.example/t/foreign", "text": "Foreign mention", "source_name": "Forum",
            "deal_id": deal_id})["id"]
        ids["source_id"] = self.api("engagement", "POST", "/monitoring/sources", headers=lead, json={
            "name": "Foreign feed", "url": "http://127.0.0.1:9/foreign.rss", "deal_id": deal_id})["id"]
        ids["keyword_rule_id"] = self.api("engagement", "POST", "/monitoring/rules", headers=lead, json={
            "keywords": ["zqxmention"], "deal_id": deal_id})["id"]
        template = self.api("engagement", "POST", "/templates", json={"title": "Matrix template",
                                                                      "body": "{customer_name}, matrix"})
        ids["template_id"] = template["id"]
        return ids

    # ------------------------------------------------------------------ channel deliveries

    def telegram(self, channel_id: str, update: dict[str, Any], secret: str | None = TG_SECRET,
                 via: str = "service") -> httpx.Response:
        import json

        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        base = self.gateway if via == "gateway" else self.urls["engagement"]
        return httpx.post(f"{base}/webhooks/telegram/{channel_id}", content=json.dumps(update).encode(),
                          headers=headers, timeout=30)

    def channel_texts(self, channel_id: str) -> list[str]:
        """Every inbound message text of a channel's conversations (as an integration sees them)."""
        texts: list[str] = []
        for conversation in self.api("engagement", "GET", "/conversations",
                                     params={"channel": channel_id, "limit": "200"}):
            detail = self.api("engagement", "GET", f"/conversations/{conversation['id']}")
            texts += [m["text"] for m in detail["messages"] if m["direction"] == "in"]
        return texts

    def wait_messages(self, channel_id: str, done: Any, timeout: float = 30) -> list[str] | None:
        """Poll a channel's messages until `done(texts)` (a bound on the delivery processor, not a sleep the
        result depends on)."""
        deadline = time.monotonic() + timeout
        while True:
            texts = self.channel_texts(channel_id)
            if done(texts):
                return texts
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)

    def _seed_content(self, deal_id: str) -> dict[str, str]:
        """The foreign deal's first content plan and an item on it, made as an integration (CO-1, CO-2)."""
        monday = datetime.now(TZ).date() - timedelta(days=datetime.now(TZ).weekday())
        ids = {"plan_id": "no-such-plan", "item_id": "no-such-item", "comment_id": "no-such-comment",
               "request_id": "no-such-request", "week_start": monday.isoformat(), "plan_day": ""}
        plans: list[dict[str, Any]] = []
        for _ in range(100):   # the content service learns of the deal from the clients stream
            response = httpx.post(f"{self.urls['content']}/api/content/deals/{deal_id}/materials-received",
                                  json={}, headers=integration_headers(), timeout=30)
            if response.status_code == 200:
                plans = response.json()
                break
            time.sleep(0.2)
        if plans:
            plan = plans[0]
            ids["plan_id"] = plan["id"]
            day = plan.get("first_day") or ""
            ids["plan_day"] = str(day)[:10]
            item = httpx.post(f"{self.urls['content']}/api/content/plans/{plan['id']}/items", timeout=30,
                              headers=integration_headers(),
                              json={"date": ids["plan_day"] or datetime.now(TZ).date().isoformat(), "kind": "post",
                                    "caption": FOREIGN_CAPTION})
            if item.status_code == 201:
                ids["item_id"] = item.json()["id"]
        return ids


def telegram_update(update_id: int, chat_id: int, text: str, message_id: int = 1) -> dict[str, Any]:
    """A private Telegram message (Bot API `Update`)."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Zqx", "username": f"zqx{chat_id}"}
    return {"update_id": update_id, "message": {"message_id": message_id, "date": int(time.time()), "from": user,
                                                "chat": {**user, "type": "private"}, "text": text}}


def vk_message(event_id: str, from_id: int, text: str, secret: str = VK_SECRET, cmid: int = 1) -> dict[str, Any]:
    """A VK Callback API `message_new`."""
    return {"type": "message_new", "group_id": VK_GROUP, "event_id": event_id, "v": "5.199", "secret": secret,
            "object": {"message": {"date": int(time.time()), "from_id": from_id, "id": cmid, "out": 0,
                                   "conversation_message_id": cmid, "peer_id": from_id, "text": text}}}


def instagram_direct(mid: str, sender: str, text: str) -> dict[str, Any]:
    """A Meta webhook delivery with one Instagram Direct message to the foreign account."""
    now = int(time.time())
    return {"object": "instagram", "entry": [{"id": IG_USER, "time": now * 1000, "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": IG_USER}, "timestamp": now * 1000,
         "message": {"mid": mid, "text": text}}]}]}


IMPORT_HEADER = ("ID;Название сделки;Бюджет;Ответственный;Этап сделки;Дата создания;Дата оплаты;Контакт: ФИО;"
                 "Контакт: Телефон;Контакт: Email;Контакт: Instagram;Тип услуги;Тип плательщика;Компания;БИН;"
                 "Дата начала обслуживания;Логин Instagram;Пароль Instagram\n")


def staff(role: str, service: str) -> dict[str, str]:
    return staff_headers(ROLE_LOGINS[role], role, service)
