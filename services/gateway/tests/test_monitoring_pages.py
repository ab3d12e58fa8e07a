"""Issue 11 "Monitoring mentions", the pages: a monitoring employee watches a feed and adds keywords on the
sources page, the real engagement service (its own process) reads the feed on loopback, the mention appears in
the triage queue and the menu count, it is turned into a conversation or dismissed with a reason (htmx), a
mention is entered by hand with validation messages, and the monitoring dashboard shows new mentions per client
account and the feeds that fail — in every language."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from shared.testing import eventually

from .backends import Backend
from .conftest import add_role_accounts, csrf_of, gateway_settings, sign_in

RSS = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Форум</title><link>https://f.example/'
       '</link><description>f</description>'
       '<item><guid>1</guid><title>Забота Кофе: очередь &lt;script&gt;alert(1)&lt;/script&gt;</title>'
       '<link>https://forum.example/t/1</link><description>Ждали 40 минут в «Забота Кофе»</description></item>'
       '<item><guid>2</guid><title>Погода</title><link>https://forum.example/t/2</link>'
       '<description>Сегодня солнечно</description></item>'
       '<item><guid>3</guid><title>Снова Забота Кофе</title><link>https://forum.example/t/3</link>'
       '<description>Кофе остыл</description></item></channel></rss>').encode()
HX = {"HX-Request": "true"}


@pytest.fixture
def feed_url() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path != "/rss":
                self.send_response(500)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(RSS)))
            self.end_headers()
            self.wfile.write(RSS)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


async def test_issue11_monitoring_pages_watch_triage_and_dashboard(database_url, service_process, nats_server, db,
                                                                  feed_url) -> None:
    from gateway.app import create_app

    engagement_url = service_process("engagement", nats_url=nats_server.url)
    engagement = Backend(engagement_url, "engagement")
    settings = gateway_settings(database_url, service_urls={**gateway_settings(database_url).service_urls,
                                                            "engagement": engagement_url})
    async with AsyncTestClient(create_app(settings, background=False), base_url="http://127.0.0.1") as client:
        await add_role_accounts(db)
        csrf = await sign_in(client, "monitor1")
        menu = (await client.get("/?lang=en")).text
        assert 'href="/monitoring"' in menu and 'href="/monitoring/sources"' in menu and 'hx-get="/nav/mentions"' in menu
        assert "Nothing waits for triage." in menu and "Every feed is read." in menu

        # Sources and keywords: validation, then a rule and two feeds (one of them failing).
        sources = await client.get("/monitoring/sources?lang=en")
        assert sources.status_code == 200 and "No feed is watched yet." in sources.text
        bad = await client.post("/monitoring/sources", data={"_csrf": csrf, "name": "", "url": "ftp://x",
                                                             "interval": "15", "deal_id": "deal-1"}, headers=HX)
        assert bad.status_code == 422 and "Required." in bad.text
        bad = await client.post("/monitoring/sources", data={"_csrf": csrf, "name": "Форум", "url": "ftp://x",
                                                             "interval": "15", "deal_id": "deal-1"}, headers=HX)
        assert bad.status_code == 422 and "Enter an address starting with http:// or https://." in bad.text
        no_words = await client.post("/monitoring/rules", data={"_csrf": csrf, "keywords": " , ",
                                                                "rule_deal_id": "deal-1"}, headers=HX)
        assert no_words.status_code == 422 and "Enter at least one keyword." in no_words.text
        rule = await client.post("/monitoring/rules", data={"_csrf": csrf, "keywords": "Забота Кофе\nzabota coffee",
                                                            "exclusions": "вакансия", "rule_deal_id": "deal-1"},
                                 headers=HX)
        assert rule.status_code == 200 and "Забота Кофе, zabota coffee" in rule.text
        for name, path in (("Форум", "/rss"), ("Лежащий сайт", "/down")):
            added = await client.post("/monitoring/sources", data={"_csrf": csrf, "name": name, "url": feed_url + path,
                                                                   "interval": "15", "deal_id": "deal-1"}, headers=HX)
            assert added.status_code == 200 and name in added.text

        async def two_new() -> str | None:
            page = (await client.get("/monitoring?lang=en")).text
            return page if page.count('class="mention card"') == 2 else None

        queue = await eventually(two_new, message="the engagement service read the feed")
        assert "<script>alert" not in queue                                     # the feed's markup never runs
        assert 'href="https://forum.example/t/1" rel="noopener noreferrer nofollow"' in queue
        assert "Turn into a conversation" in queue and "Mentions found: 2" in queue
        assert (await client.get("/nav/mentions", headers=HX)).text.count(">2<") == 1

        async def failing() -> str | None:
            page = (await client.get("/?lang=en")).text
            return page if "the feed answered HTTP 500" in page else None

        dashboard = await eventually(failing, message="the failing feed on the dashboard")
        assert "New mentions" in dashboard and 'id="dash-failing-sources"' in dashboard and "Лежащий сайт" in dashboard

        mentions = engagement.call("GET", "/mentions?status=new")
        by_title = {m["title"]: m for m in mentions}
        first, second = by_title["Снова Забота Кофе"], next(m for t, m in by_title.items() if "очередь" in t)

        # Dismiss without a reason, then "other" without words: the form says so, nothing changes.
        no_reason = await client.post(f"/monitoring/mentions/{first['id']}/dismiss",
                                      data={"_csrf": csrf, "reason": "", "status": "new"}, headers=HX)
        assert no_reason.status_code == 422 and "Choose a reason." in no_reason.text
        no_words = await client.post(f"/monitoring/mentions/{first['id']}/dismiss?lang=ru",
                                     data={"_csrf": csrf, "reason": "other", "status": "new"}, headers=HX)
        assert no_words.status_code == 422
        assert engagement.call("GET", f"/mentions/{first['id']}")["status"] == "new"
        dismissed = await client.post(f"/monitoring/mentions/{first['id']}/dismiss",
                                      data={"_csrf": csrf, "reason": "duplicate", "status": "new"}, headers=HX)
        assert dismissed.status_code == 200 and dismissed.text.count('class="mention card"') == 1
        converted = await client.post(f"/monitoring/mentions/{second['id']}/convert",
                                      data={"_csrf": csrf, "status": "new"}, headers=HX)
        assert converted.status_code == 200 and 'class="mention card"' not in converted.text
        conversation_id = engagement.call("GET", f"/mentions/{second['id']}")["conversation_id"]
        conversation = engagement.call("GET", f"/conversations/{conversation_id}")
        assert conversation["kind"] == "monitoring" and "https://forum.example/t/1" in conversation["messages"][0]["text"]
        done = (await client.get("/monitoring?status=dismissed&lang=en")).text
        assert "Duplicate" in done and "Dismissed by" in done

        # A mention by hand: validation messages, then it is in the queue.
        form = await client.get("/monitoring/new?lang=en")
        assert form.status_code == 200 and "Address of the mention" in form.text
        invalid = await client.post("/monitoring/new", data={"_csrf": csrf_of(form.text), "url": "2gis",
                                                            "source_name": "2ГИС", "text": "", "deal_id": "agency"},
                                    headers=HX)
        assert invalid.status_code == 422 and "Required." in invalid.text
        invalid = await client.post("/monitoring/new", data={"_csrf": csrf, "url": "2gis", "source_name": "2ГИС",
                                                            "text": "Холодный кофе", "deal_id": "agency"}, headers=HX)
        assert invalid.status_code == 422 and "Enter an address starting with http:// or https://." in invalid.text
        ok = await client.post("/monitoring/new", data={"_csrf": csrf, "url": "https://2gis.example/r/1",
                                                       "source_name": "2ГИС", "text": "Холодный кофе <i>x</i>",
                                                       "deal_id": "agency"}, headers=HX)
        assert ok.status_code == 200 and ok.headers.get("hx-redirect") == "/monitoring"
        queue = (await client.get("/monitoring?lang=en")).text
        assert "Холодный кофе &lt;i&gt;x&lt;/i&gt;" in queue and "Agency&#39;s own brand" in queue  # escaped

        for lang, words in (("ru", "Упоминания"), ("kk", "Ескерулер"), ("zh", "提及")):
            assert words in (await client.get(f"/monitoring?lang={lang}")).text, lang


async def test_issue11_monitoring_pages_are_for_monitoring_and_the_lead_only(client) -> None:
    await sign_in(client, "agent1")
    for path in ("/monitoring", "/monitoring/sources", "/monitoring/new", "/nav/mentions"):
        assert (await client.get(path)).status_code in (403, 404), path
    menu = (await client.get("/")).text
    assert 'href="/monitoring"' not in menu
