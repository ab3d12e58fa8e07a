"""Issue 11 "Monitoring mentions": feeds polled per client account against keyword rules (a real HTTP server on
loopback serving RSS and Atom with Cyrillic entries, ETags, a 500 and a malformed feed), mentions deduplicated,
the triage queue (convert → conversation of kind monitoring, dismiss with a reason), manual mentions, and who may."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from engagement import feeds
from engagement.models import Conversation, Mention, Message, MonitoringSource

from .payloads import LEAD

MONITOR, AGENT, SENIOR, ANALYST = ("monitor1", "monitoring"), ("agent1", "care_agent"), ("senior", "senior_agent"), \
    ("analyst1", "analyst")


def rss(items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(f"<item><guid>{guid}</guid><title>{title}</title><link>https://forum.example/t/{guid}</link>"
                   f"<description>{text}</description><author>user@forum.example (Пользователь)</author>"
                   f"<pubDate>Mon, 02 Mar 2026 05:00:00 GMT</pubDate></item>" for guid, title, text in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Форум</title>'
            f"<link>https://forum.example/</link><description>f</description>{body}</channel></rss>").encode()


def atom(entries: list[tuple[str, str, str]]) -> bytes:
    body = "".join(f"<entry><id>urn:review:{eid}</id><title>{title}</title>"
                   f'<link href="https://reviews.example/r/{eid}"/><updated>2026-03-02T04:00:00Z</updated>'
                   f"<author><name>Отзовик</name></author><content type=\"html\">{text}</content></entry>"
                   for eid, title, text in entries)
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Отзывы</title>'
            f"<id>urn:reviews</id><updated>2026-03-02T04:00:00Z</updated>{body}</feed>").encode()


RSS_V1 = [("1", "Кофейня Забота на Абая", "Отличный кофе в «Забота Кофе», рекомендую!"),
          ("2", "Погода", "Сегодня солнечно, забота о себе важна"),       # «забота» without «кофе»: no rule matches
          ("3", "ЗАБОТА КОФЕ — очередь", "Ждали 40 минут &lt;b&gt;ужас&lt;/b&gt;"),
          ("4", "Вакансия", "Забота Кофе ищет бариста")]                  # vetoed by the exclusion «вакансия»
ATOM_V1 = [("a", "Zabota coffee review", "Great place, but the wifi is slow"),
           ("b", "Кофейни города", "Заботы кофе не хватает")]              # «Заботы» is not the word «Забота»


LAST_MODIFIED = "Mon, 02 Mar 2026 04:00:00 GMT"


class Feeds:
    """RSS at /rss with an ETag (304 to a matching If-None-Match), Atom at /atom with a Last-Modified (304 to a
    matching If-Modified-Since), a 500 at /down and a malformed document at /broken. `requests` records
    (path, If-None-Match or If-Modified-Since) of every call."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[str, bytes, str]] = {
            "/rss": ('"rss-1"', rss(RSS_V1), "application/rss+xml; charset=utf-8"),
            "/atom": ("", atom(ATOM_V1), "application/atom+xml"),
            "/broken": ('"b"', b"<rss><channel><item><title>unterminated", "application/rss+xml"),
        }
        self.failing = {"/down"}
        self.requests: list[tuple[str, str | None]] = []
        feeds_ = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                feeds_.requests.append((self.path, self.headers.get("If-None-Match")
                                        or self.headers.get("If-Modified-Since")))
                if self.path in feeds_.failing:
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"Internal Server Error")
                    return
                doc = feeds_.docs.get(self.path)
                if doc is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                etag, body, content_type = doc
                if (etag and self.headers.get("If-None-Match") == etag) or (
                        not etag and self.headers.get("If-Modified-Since") == LAST_MODIFIED):
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                if etag:
                    self.send_header("ETag", etag)
                else:
                    self.send_header("Last-Modified", LAST_MODIFIED)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]


@pytest.fixture
def feed_server() -> Iterator[Feeds]:
    served = Feeds()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()
    thread.join(10)


async def poll(api) -> int:
    return api.in_app(api.runtime.state["poller"].poll_due)


async def setup_coffee(api, feed_server: Feeds, as_=LEAD) -> dict[str, dict]:
    await api.ok("post", "/monitoring/rules", {"deal_id": "deal-1", "keywords": ["Забота Кофе", "zabota coffee"],
                                               "exclusions": ["вакансия"]}, as_=as_, status=201)
    await api.ok("post", "/monitoring/rules", {"deal_id": "deal-2", "keywords": ["погода"]}, as_=as_, status=201)
    sources = {}
    for name, path in (("Форум", "/rss"), ("Отзывы", "/atom")):
        sources[path] = await api.ok("post", "/monitoring/sources", {
            "deal_id": "deal-1", "name": name, "url": feed_server.url + path, "interval_minutes": 10},
            as_=as_, status=201)
    return sources


async def mentions(api, as_=MONITOR, **params: Any) -> tuple[list[dict], int]:
    response = await api.get("/mentions", as_, **params)
    assert response.status_code == 200, response.text
    return response.json(), int(response.headers["x-total-count"])


# ---------------------------------------------------------------- matching (plain functions)

def test_issue11_keywords_match_whole_words_case_insensitively_in_cyrillic_too() -> None:
    rules = [(["Забота Кофе", "zabota"], ["вакансия"])]
    assert feeds.matches(rules, "Были в ЗАБОТА   кофе вчера") == ["Забота Кофе"]
    assert feeds.matches(rules, "Заботы кофе не хватает") == []            # another word form: not this keyword
    assert feeds.matches(rules, "Забота кофейня") == []                    # «кофе» inside «кофейня»
    assert feeds.matches(rules, "Вакансия: Забота Кофе ищет бариста") == []
    assert feeds.matches(rules, "I love Zabota!") == ["zabota"]
    assert feeds.matches(rules, "zabotanik") == []
    assert feeds.matches([(["#забота"], [])], "пост с тегом #Забота.") == ["#забота"]


def test_issue11_failing_feeds_back_off_up_to_six_hours() -> None:
    assert [feeds.retry_seconds(n, 600) for n in (1, 2, 3)] == [600, 1200, 2400]
    assert feeds.retry_seconds(30, 600) == 6 * 3600
    assert feeds.retry_seconds(3, 86400) == 86400


# ---------------------------------------------------------------- polling

async def test_issue11_poll_stores_matching_entries_once_honouring_etags(api_any, feed_server) -> None:
    api = api_any
    sources = await setup_coffee(api, feed_server)
    assert await poll(api) == 3
    found, total = await mentions(api)
    assert total == 3
    by_title = {m["title"]: m for m in found}
    assert set(by_title) == {"Кофейня Забота на Абая", "ЗАБОТА КОФЕ — очередь", "Zabota coffee review"}
    queue = by_title["ЗАБОТА КОФЕ — очередь"]
    assert queue["status"] == "new" and queue["deal_id"] == "deal-1" and queue["source_name"] == "Форум"
    assert queue["url"] == "https://forum.example/t/3" and queue["matched"] == ["Забота Кофе"]
    assert queue["text"] == "Ждали 40 минут ужас"                          # HTML stripped for the queue
    assert by_title["Zabota coffee review"]["source_id"] == sources["/atom"]["id"]
    rows = {m.title: m for m in await api.rows(Mention)}
    assert rows["ЗАБОТА КОФЕ — очередь"].raw["link"] == "https://forum.example/t/3"   # the entry as parsed is kept
    events = await api.events("engagement.mention.received.v1")
    assert sorted(e.title for e in events) == sorted(by_title)
    assert all(e.deal_id == "deal-1" and e.account == "deal-1" and not e.manual for e in events)

    # Not due yet: nothing is fetched. Due: the feeds answer 304 to our ETags, nothing new.
    calls = len(feed_server.requests)
    assert await poll(api) == 0 and len(feed_server.requests) == calls
    api.clock.advance(timedelta(minutes=10))
    assert await poll(api) == 0
    assert sorted(feed_server.requests[calls:]) == [("/atom", LAST_MODIFIED), ("/rss", '"rss-1"')]

    # The forum changes (new ETag): the old entries are served again with one new one; one new mention.
    feed_server.docs["/rss"] = ('"rss-2"', rss([*RSS_V1, ("5", "Снова Забота Кофе", "открылись на Сатпаева")]),
                                "application/rss+xml")
    api.clock.advance(timedelta(minutes=10))
    assert await poll(api) == 1
    assert (await mentions(api))[1] == 4 and await api.count(Mention) == 4
    source = {s["id"]: s for s in await api.ok("get", "/monitoring/sources", as_=MONITOR)}[sources["/rss"]["id"]]
    assert source["error"] is None and source["failures"] == 0
    assert [r.etag for r in await api.rows(MonitoringSource) if r.url.endswith("/rss")] == ['"rss-2"']


async def test_issue11_a_failing_feed_keeps_its_error_backs_off_and_spares_the_others(api, feed_server) -> None:
    await api.ok("post", "/monitoring/rules", {"deal_id": "deal-1", "keywords": ["забота кофе"],
                                               "exclusions": ["вакансия"]}, status=201)
    down = await api.ok("post", "/monitoring/sources", {"deal_id": "deal-1", "name": "Лежит",
                                                        "url": feed_server.url + "/down"}, status=201)
    broken = await api.ok("post", "/monitoring/sources", {"deal_id": "deal-1", "name": "Битый",
                                                          "url": feed_server.url + "/broken"}, status=201)
    await api.ok("post", "/monitoring/sources", {"deal_id": "deal-1", "name": "Форум", "url": feed_server.url + "/rss"},
                 status=201)
    assert await poll(api) == 2                                           # the good feed is read all the same
    listed = {s["id"]: s for s in await api.ok("get", "/monitoring/sources")}
    assert listed[down["id"]]["error"] == "the feed answered HTTP 500" and listed[down["id"]]["failures"] == 1
    assert "not a valid RSS/Atom feed" in listed[broken["id"]]["error"]
    summary = await api.ok("get", "/mentions/summary", as_=MONITOR)
    assert {s["name"] for s in summary["failing_sources"]} == {"Лежит", "Битый"}
    assert summary["new_by_account"] == [{"account": "deal-1", "deal_id": "deal-1", "count": 2}]

    # Due again after the interval (15 minutes), then after twice that; it recovers and its error is cleared.
    api.clock.advance(timedelta(minutes=15))
    await poll(api)
    listed = {s["id"]: s for s in await api.ok("get", "/monitoring/sources")}
    assert listed[down["id"]]["failures"] == 2
    api.clock.advance(timedelta(minutes=15))
    before = feed_server.paths().count("/down")
    await poll(api)
    assert feed_server.paths().count("/down") == before                   # backing off: 30 minutes this time
    feed_server.failing.clear()
    feed_server.docs["/down"] = ('"d"', rss([("9", "Забота кофе", "вернулись")]), "application/rss+xml")
    api.clock.advance(timedelta(minutes=15))
    assert await poll(api) == 1
    listed = {s["id"]: s for s in await api.ok("get", "/monitoring/sources")}
    assert listed[down["id"]]["error"] is None and listed[down["id"]]["failures"] == 0


async def test_issue11_the_poller_is_a_supervised_loop_in_readiness(api) -> None:
    spec_loops = api.runtime.spec.loops(api.runtime)
    assert "engagement monitoring" in spec_loops


# ---------------------------------------------------------------- triage

async def test_issue11_convert_makes_a_monitoring_conversation_agents_of_the_account_see(api_any, feed_server) -> None:
    api = api_any
    await setup_coffee(api, feed_server, as_=MONITOR)
    await poll(api)
    await api.ok("put", "/staff/agent1/accounts", {"accounts": ["deal-1"]})
    (mention,), _ = await mentions(api, q="очередь")
    converted = await api.ok("post", f"/mentions/{mention['id']}/convert", as_=MONITOR, status=201)
    assert converted["status"] == "converted" and converted["triaged_by"] == "monitor1"
    conversation = await api.ok("get", f"/conversations/{converted['conversation_id']}", as_=AGENT)
    assert conversation["kind"] == "monitoring" and conversation["thread_kind"] == "mention"
    assert conversation["deal_id"] == "deal-1" and conversation["status"] == "open"
    assert conversation["messages"][0]["direction"] == "in"
    assert "https://forum.example/t/3" in conversation["messages"][0]["text"]
    received = await api.events("engagement.message.received.v1")
    assert [(e.channel_kind, e.conversation_id) for e in received] == [("monitoring", conversation["id"])]
    # Twice: a conflict, nothing doubled.
    again = await api.post(f"/mentions/{mention['id']}/convert", as_=MONITOR)
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "status"
    assert await api.count(Conversation) == 1
    # The agent answers on the forum and records it: stored as sent, never queued for a channel.
    reply = await api.ok("post", f"/conversations/{conversation['id']}/replies", {"text": "Ответили на форуме"},
                         as_=AGENT, status=202)
    assert reply["delivery"] == "sent"
    assert await api.send() == 0
    assert [m.delivery for m in await api.rows(Message) if m.direction == "out"] == ["sent"]
    answered = await api.events("engagement.conversation.answered.v1")
    assert len(answered) == 1 and answered[0].channel_kind == "monitoring"
    # Filters: status and client account.
    assert (await mentions(api, status="converted"))[1] == 1
    assert (await mentions(api, status="new", deal_id="deal-1"))[1] == 2
    assert (await mentions(api, deal_id="deal-2"))[1] == 0


async def test_issue11_dismiss_needs_a_reason_and_other_needs_words(api, feed_server) -> None:
    await setup_coffee(api, feed_server)
    await poll(api)
    first, second, *_ = (await mentions(api))[0]
    missing = await api.post(f"/mentions/{first['id']}/dismiss", {}, as_=MONITOR)
    assert missing.status_code == 422 and [e["field"] for e in missing.json()["errors"]] == ["reason"]
    unknown = await api.post(f"/mentions/{first['id']}/dismiss", {"reason": "boring"}, as_=MONITOR)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "reason"
    other = await api.post(f"/mentions/{first['id']}/dismiss", {"reason": "other", "note": "  "}, as_=MONITOR)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "note"
    assert (await api.ok("get", f"/mentions/{first['id']}", as_=MONITOR))["status"] == "new"
    done = await api.ok("post", f"/mentions/{first['id']}/dismiss", {"reason": "spam"}, as_=MONITOR)
    assert done["status"] == "dismissed" and done["dismiss_reason"] == "spam"
    noted = await api.ok("post", f"/mentions/{second['id']}/dismiss", {"reason": "other", "note": "конкурент"})
    assert noted["dismiss_note"] == "конкурент"
    late = await api.post(f"/mentions/{first['id']}/convert", as_=MONITOR)
    assert late.status_code == 409
    assert (await mentions(api, status="dismissed"))[1] == 2 and await api.count(Conversation) == 0


async def test_issue11_manual_mention_validated_then_triaged(api) -> None:
    bad = await api.post("/mentions", {"url": "forum.example", "text": " ", "source_name": ""}, as_=MONITOR)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"url", "text", "source_name"}
    missing = await api.post("/mentions", {"url": "https://x.example"}, as_=MONITOR)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] in ("text", "source_name")
    assert await api.count(Mention) == 0
    m = await api.ok("post", "/mentions", {"url": "https://2gis.example/r/1", "text": "Забота Кофе — холодный кофе",
                                           "author": "Айгерим", "source_name": "2ГИС", "deal_id": "deal-1"},
                     as_=MONITOR, status=201)
    assert m["manual"] and m["status"] == "new" and m["created_by"] == "monitor1"
    (event,) = await api.events("engagement.mention.received.v1")
    assert event.manual and event.source_name == "2ГИС" and event.deal_id == "deal-1"
    converted = await api.ok("post", f"/mentions/{m['id']}/convert", as_=MONITOR, status=201)
    conversation = await api.ok("get", f"/conversations/{converted['conversation_id']}")
    assert conversation["customer"]["name"] == "Айгерим" and conversation["kind"] == "monitoring"


async def test_issue11_sources_and_rules_validated_and_removed(api) -> None:
    bad = await api.post("/monitoring/sources", {"name": "", "url": "ftp://x", "interval_minutes": 0})
    assert {e["field"] for e in bad.json()["errors"]} == {"name", "url", "interval_minutes"} and bad.status_code == 422
    empty = await api.post("/monitoring/rules", {"keywords": [" ", ""]})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "keywords"
    source = await api.ok("post", "/monitoring/sources", {"name": "Новости", "url": "https://news.example/rss"},
                          status=201)
    assert source["account"] == "agency" and source["interval_minutes"] == 15
    twice = await api.post("/monitoring/sources", {"name": "Новости 2", "url": "https://news.example/rss"})
    assert twice.status_code == 409 and twice.json()["errors"][0]["field"] == "url"
    rule = await api.ok("post", "/monitoring/rules", {"keywords": ["Забота", "забота", " Zabota "]}, status=201)
    assert rule["keywords"] == ["Забота", "Zabota"] and rule["account"] == "agency"
    assert (await api.client.delete(f"/api/engagement/monitoring/sources/{source['id']}",
                                    headers=api.headers(MONITOR))).status_code == 204
    assert (await api.client.delete(f"/api/engagement/monitoring/rules/{rule['id']}",
                                    headers=api.headers(LEAD))).status_code == 204
    assert await api.ok("get", "/monitoring/sources") == [] and await api.ok("get", "/monitoring/rules") == []


async def test_issue11_only_monitoring_and_the_lead_triage(api) -> None:
    m = await api.ok("post", "/mentions", {"url": "https://x.example/1", "text": "t", "source_name": "s"},
                     as_=MONITOR, status=201)
    for who in (AGENT, SENIOR, ANALYST, ("manager1", "content_manager")):
        assert (await api.get("/mentions", as_=who)).status_code == 403, who
        assert (await api.post(f"/mentions/{m['id']}/convert", as_=who)).status_code == 403, who
        assert (await api.post("/monitoring/sources", {"name": "n", "url": "https://x.example/f"},
                               as_=who)).status_code == 403, who
        assert (await api.get("/monitoring/rules", as_=who)).status_code == 403, who
    assert (await api.get("/mentions", as_=None)).status_code == 200     # integration (Bearer)
