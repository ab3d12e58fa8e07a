"""Issue 10 "Publishing": the Instagram connection (token encrypted at rest, never answered, reveal audited)
and automatic publishing of a scheduled item through the Content Publishing API, against a local stand-in
Graph server on loopback (graph_standin.py): a success, a 4xx, an expired token, a rate-limit error then
success on retry, an uncertain publish that must not double-post, a container still in progress, and the
account's publishing quota. Media come from signed, expiring URLs (`GET /media/{token}`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from content.models import AuditEntry, InstagramAccount
from sqlalchemy import select

from .conftest import ANALYST, LEAD, MANAGER, OTHER, T0, local, midnight, new_deal, period_opened, stage
from .graph_standin import EXPIRED_TOKEN, INVALID_PARAMETER, RATE_LIMITED, GraphStandIn

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 200
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200
IG = "17841400000000001"
IG_TOKEN = "IGAAT-secret-token-0123456789"
WHEN = local(2026, 3, 3, 10, 0).astimezone(UTC)


@pytest.fixture
def graph(monkeypatch):
    standin = GraphStandIn().start()
    monkeypatch.setenv("INSTAGRAM_GRAPH_URL", standin.url)
    standin.account(IG, IG_TOKEN)
    yield standin
    standin.stop()


async def upload(api, deal: str, data: bytes = JPEG, name: str = "post.jpg", as_=MANAGER):
    return await api.client.post(f"/api/content/deals/{deal}/media", files={"file": (name, data)},
                                 headers=api.headers(as_))


async def launched(api) -> tuple[str, dict]:
    deal = new_deal()
    await api.feed(stage(deal, "questionnaire_received", T0),
                   period_opened(deal, 1, midnight(2026, 3, 2), midnight(2026, 4, 2), at=T0))
    return deal, (await api.plans(deal))[0]


async def scheduled(api, kind: str = "feed", media: int = 1, connect: bool = True) -> tuple[str, dict]:
    """A launched deal whose plan 1 holds one item scheduled for 3 March 10:00, approved by the client."""
    deal, plan = await launched(api)
    refs = []
    for _ in range(media):
        stored = await upload(api, deal, MP4 if kind == "reel" else JPEG, "clip.mp4" if kind == "reel" else "a.jpg")
        assert stored.status_code == 201, stored.text
        refs.append(stored.json()["ref"])
    item = await api.ok("post", f"/plans/{plan['id']}/items", {
        "date": "2026-03-03", "kind": kind, "caption": "Торт дня 🍰", "scheduled_at": WHEN.isoformat(), "media": refs})
    assert item["status"] == "scheduled"
    sent = await api.ok("post", f"/plans/{plan['id']}/submit")
    token = sent["approval_url"].rsplit("/", 1)[1]
    await api.ok("post", f"/api/content/approvals/{token}", {"decision": "approve", "comments": []}, as_="public")
    if connect:
        await api.ok("put", f"/deals/{deal}/instagram", {"ig_user_id": IG, "access_token": IG_TOKEN})
    return deal, item


async def at_time(api, when: datetime) -> None:
    api.clock.set(when)
    api.in_app(api.app.state.runtime.scheduler.run_due)


async def item_now(api, deal: str, item_id: str) -> dict:
    for plan in await api.plans(deal, as_=LEAD):
        for item in plan["items"]:
            if item["id"] == item_id:
                return item
    raise AssertionError(item_id)


async def published_events(api, item_id: str) -> list:
    return [e for e in await api.events("content.post.published.v1") if e.post_id == item_id]


# ---------------------------------------------------------------- the connection


async def test_ig_connection_token_encrypted_never_answered_reveal_audited(api_any, graph) -> None:
    api = api_any
    deal, _plan = await launched(api)
    bad = await api.call("put", f"/deals/{deal}/instagram", {"ig_user_id": "@cakes", "access_token": ""})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"ig_user_id", "access_token"}
    refused = await api.call("put", f"/deals/{deal}/instagram", {"ig_user_id": IG, "access_token": "wrong"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "access_token"
    assert "Session has expired" in refused.json()["errors"][0]["message"]            # the channel's words
    assert (await api.call("put", f"/deals/{deal}/instagram", {"ig_user_id": IG, "access_token": IG_TOKEN},
                           as_=OTHER)).status_code == 404                             # not their deal
    assert (await api.call("put", f"/deals/{deal}/instagram", {"ig_user_id": IG, "access_token": IG_TOKEN},
                           as_=ANALYST)).status_code == 403
    connected = await api.ok("put", f"/deals/{deal}/instagram", {"ig_user_id": IG, "access_token": IG_TOKEN})
    assert connected == {"connected": True, "ig_user_id": IG, "username": "aigerim.cakes", "connected_by": "manager1",
                         "connected_at": T0.isoformat(), "checked_at": T0.isoformat(), "last_error": None,
                         "status": "ok"}
    assert IG_TOKEN not in (await api.call("get", f"/deals/{deal}/instagram")).text
    # Graph got the token in the Authorization header, never in a URL.
    assert all(IG_TOKEN not in str(params) for _m, _e, params in graph.state.requests)

    async def stored() -> tuple[bytes, list]:
        async with api.app.state.runtime.db.transaction() as session:
            row = await session.get(InstagramAccount, deal)
            audit = (await session.execute(select(AuditEntry.actor, AuditEntry.action)
                                           .order_by(AuditEntry.id))).all()
            return row.token_enc, [tuple(a) for a in audit]

    blob, _audit = api.in_app(stored)
    assert IG_TOKEN.encode() not in blob
    assert (await api.call("post", f"/deals/{deal}/instagram/reveal", as_=ANALYST)).status_code == 403
    revealed = await api.ok("post", f"/deals/{deal}/instagram/reveal", as_=LEAD)
    assert revealed == {"ig_user_id": IG, "access_token": IG_TOKEN}
    _blob, audit = api.in_app(stored)
    assert ("manager1", "instagram.connected") in audit and ("boss", "instagram.token_revealed") in audit
    assert all(IG_TOKEN.encode() not in row.payload for row in await api.outbox())   # never on NATS


# ---------------------------------------------------------------- publishing


async def test_ig_publish_success_at_the_scheduled_time_from_a_signed_media_url(api_any, graph) -> None:
    api = api_any
    deal, item = await scheduled(api)
    await at_time(api, WHEN - timedelta(minutes=1))
    assert graph.state.calls("media") == 0                          # not before its time
    await at_time(api, WHEN)
    done = await item_now(api, deal, item["id"])
    assert done["status"] == "published" and done["published_at"] == WHEN.isoformat()
    [post_] = graph.state.posts
    assert done["permalink"] == post_["permalink"] and done["publish_error"] is None
    container = graph.state.containers[post_["container"]]["params"]
    assert "media_type" not in container and container["caption"] == "Торт дня 🍰"  # a feed image
    # The quota was read before publishing.
    order = [e for _m, e, _p in graph.state.requests]
    assert order.index("content_publishing_limit") < order.index("media_publish")
    # Graph fetches the media from the signed URL, which serves the uploaded file.
    path = "/media/" + container["image_url"].rsplit("/media/", 1)[1]
    served = await api.client.get(path)
    assert served.status_code == 200 and served.content == JPEG and served.headers["content-type"] == "image/jpeg"
    [evt] = await published_events(api, item["id"])
    assert (evt.kind, evt.published_at, evt.deal_id) == ("feed", WHEN, deal)
    # The signed URL expires (24 h) and a forged one is unknown.
    api.clock.set(WHEN + timedelta(hours=25))
    assert (await api.client.get(path)).status_code == 410
    assert (await api.client.get(path[:-3] + "xyz")).status_code == 404


async def test_ig_story_reel_and_carousel_containers(api, graph) -> None:
    deal_s, story = await scheduled(api, "story")
    deal_r, reel = await scheduled(api, "reel")
    deal_c, carousel = await scheduled(api, "feed", media=3)
    await at_time(api, WHEN)
    for deal, item, kind in ((deal_s, story, "story"), (deal_r, reel, "reel"), (deal_c, carousel, "feed")):
        assert (await item_now(api, deal, item["id"]))["status"] == "published"
        assert [e.kind for e in await published_events(api, item["id"])] == [kind]
    types = sorted(graph.state.containers[p["container"]]["params"].get("media_type", "") for p in graph.state.posts)
    assert types == ["CAROUSEL", "REELS", "STORIES"]
    carousel_post = next(p for p in graph.state.posts if p["params"].get("media_type") == "CAROUSEL")
    children = carousel_post["params"]["children"].split(",")
    assert len(children) == 3 and all(graph.state.containers[c]["params"]["is_carousel_item"] == "true"
                                      for c in children)


async def test_ig_graph_4xx_is_stored_on_the_item_as_failed_with_the_channels_words(api_any, graph) -> None:
    api = api_any
    deal, item = await scheduled(api)
    graph.script("media", (400, INVALID_PARAMETER))
    await at_time(api, WHEN)
    failed = await item_now(api, deal, item["id"])
    assert failed["status"] == "failed"
    assert {k: failed["publish_error"][k] for k in ("kind", "code", "subcode", "message", "step")} == {
        "kind": "error", "code": 100, "subcode": 2207052, "message": "Invalid parameter", "step": "container"}
    assert graph.state.posts == [] and await published_events(api, item["id"]) == []
    # A published item is not retried; a failed one is, and goes out.
    retried = await api.ok("post", f"/items/{item['id']}/retry")
    assert retried["status"] == "scheduled"
    assert (await api.call("post", f"/items/{item['id']}/retry")).status_code == 409
    await at_time(api, WHEN + timedelta(minutes=5))
    assert (await item_now(api, deal, item["id"]))["status"] == "published"
    assert len(graph.state.posts) == 1


async def test_ig_expired_token_190_fails_until_reconnected(api, graph) -> None:
    deal, item = await scheduled(api)
    graph.account(IG, "IGAAT-a-new-token")                          # the old token no longer works
    await at_time(api, WHEN)
    failed = await item_now(api, deal, item["id"])
    assert failed["status"] == "failed" and failed["publish_error"]["kind"] == "token_expired"
    assert failed["publish_error"]["code"] == EXPIRED_TOKEN["error"]["code"]
    status = await api.ok("get", f"/deals/{deal}/instagram")          # the connection shows it too
    assert status["status"] == "error" and status["last_error"]["code"] == 190
    await api.ok("put", f"/deals/{deal}/instagram", {"ig_user_id": IG, "access_token": "IGAAT-a-new-token"})
    assert (await api.ok("get", f"/deals/{deal}/instagram"))["last_error"] is None
    await api.ok("post", f"/items/{item['id']}/retry")
    await at_time(api, WHEN + timedelta(minutes=1))
    assert (await item_now(api, deal, item["id"]))["status"] == "published"


async def test_ig_rate_limit_error_then_success_on_retry(api_any, graph) -> None:
    api = api_any
    deal, item = await scheduled(api)
    graph.script("content_publishing_limit", (400, RATE_LIMITED))
    await at_time(api, WHEN)
    failed = await item_now(api, deal, item["id"])
    assert failed["status"] == "failed"
    assert (failed["publish_error"]["kind"], failed["publish_error"]["code"]) == ("rate_limit", 4)
    assert "request limit reached" in failed["publish_error"]["message"]
    assert graph.state.calls("media_publish") == 0
    await api.ok("post", f"/items/{item['id']}/retry")
    await at_time(api, WHEN + timedelta(minutes=30))
    done = await item_now(api, deal, item["id"])
    assert done["status"] == "published" and done["publish_error"] is None
    assert graph.state.calls("media") == 1                          # the container made before is reused
    assert len(graph.state.posts) == 1 and len(await published_events(api, item["id"])) == 1


async def test_ig_uncertain_publish_rereads_the_container_and_never_double_posts(api_any, graph) -> None:
    api = api_any
    deal, item = await scheduled(api)
    graph.state.publish_then_fail = 1                               # published, but the answer is a 500
    await at_time(api, WHEN)
    pending = await item_now(api, deal, item["id"])
    assert pending["status"] == "scheduled" and pending["publish_state"] == "uncertain"
    assert await published_events(api, item["id"]) == []
    await at_time(api, WHEN + timedelta(seconds=60))                # the next step re-reads the container
    done = await item_now(api, deal, item["id"])
    assert done["status"] == "published" and done["published_at"] == WHEN.isoformat()  # when the call was made
    assert graph.state.calls("media_publish") == 1 and len(graph.state.posts) == 1
    assert len(await published_events(api, item["id"])) == 1


async def test_ig_5xx_before_publishing_is_retried_after_rereading_the_container(api, graph) -> None:
    deal, item = await scheduled(api)
    graph.script("media_publish", (502, {"error": "bad gateway"}))  # not published
    await at_time(api, WHEN)
    assert (await item_now(api, deal, item["id"]))["publish_state"] == "uncertain"
    await at_time(api, WHEN + timedelta(seconds=60))
    assert (await item_now(api, deal, item["id"]))["status"] == "published"
    assert graph.state.calls("media_publish") == 2 and len(graph.state.posts) == 1


async def test_ig_container_in_progress_is_polled_then_published(api, graph) -> None:
    deal, item = await scheduled(api, "reel")
    graph.state.in_progress_polls = 2
    await at_time(api, WHEN)
    assert graph.state.calls("media_publish") == 0
    await at_time(api, WHEN + timedelta(seconds=60))
    assert (await item_now(api, deal, item["id"]))["status"] == "scheduled"
    await at_time(api, WHEN + timedelta(seconds=120))
    assert (await item_now(api, deal, item["id"]))["status"] == "published"


async def test_ig_quota_reached_waits_and_publishes_when_the_quota_frees(api_any, graph) -> None:
    api = api_any
    deal, item = await scheduled(api)
    graph.state.quota_total, graph.state.quota_extra_usage = 25, 25  # the account's own quota, used up
    await at_time(api, WHEN)
    waiting = await item_now(api, deal, item["id"])
    assert waiting["status"] == "scheduled" and waiting["publish_state"] == "quota"
    assert waiting["publish_error"]["kind"] == "quota" and "25 of 25" in waiting["publish_error"]["message"]
    assert graph.state.calls("media_publish") == 0
    graph.state.quota_extra_usage = 24
    await at_time(api, WHEN + timedelta(minutes=59))
    assert graph.state.calls("media_publish") == 0
    await at_time(api, WHEN + timedelta(minutes=60))
    assert (await item_now(api, deal, item["id"]))["status"] == "published"


async def test_ig_not_connected_or_published_by_hand_is_left_alone(api, graph) -> None:
    deal, item = await scheduled(api, connect=False)
    await at_time(api, WHEN)
    assert (await item_now(api, deal, item["id"]))["status"] == "scheduled" and graph.state.requests == []
    await api.ok("post", f"/items/{item['id']}/published", {"published_at": WHEN.isoformat()}, as_=LEAD)
    await api.ok("put", f"/deals/{deal}/instagram", {"ig_user_id": IG, "access_token": IG_TOKEN})
    await at_time(api, WHEN + timedelta(hours=1))
    assert graph.state.calls("media") == 0 and len(await published_events(api, item["id"])) == 1


async def test_ig_media_upload_accepts_jpeg_and_video_only(api, graph) -> None:
    deal, _plan = await launched(api)
    png = await upload(api, deal, b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "a.png")
    assert png.status_code == 422 and png.json()["errors"][0]["field"] == "file"
    assert (await upload(api, deal, b"", "a.jpg")).status_code == 422
    assert (await upload(api, deal, JPEG, as_=OTHER)).status_code == 404
    ok = await upload(api, deal, MP4, "clip.mp4")
    assert ok.status_code == 201 and ok.json()["content_type"] == "video/mp4"


# ---------------------------------------------------------------- CO-7 from the Insights API


async def test_co7_week_fetched_from_the_insights_api_is_stored_like_an_import(api_any, graph) -> None:
    api = api_any
    deal, _item = await scheduled(api)
    week = local(2026, 3, 9, 0, 0)                                  # Monday 9 March (local)
    for i in range(7):
        since = int((week + timedelta(days=i)).timestamp())
        graph.state.daily[since] = {"likes": 100 + i, "comments": 10, "saves": 5, "reach": 1000}
    graph.state.daily.pop(int((week + timedelta(days=6)).timestamp()))  # Sunday: no data (an empty set)
    graph.state.followers = [((week + timedelta(days=i + 1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
                              2000 + i) for i in range(6)]
    api.clock.set(local(2026, 3, 16, 8, 0).astimezone(UTC))
    assert (await api.call("post", f"/deals/{deal}/stats/fetch", {"week_start": "2026-03-10"})).status_code == 422
    fetched = await api.ok("post", f"/deals/{deal}/stats/fetch", {})  # the last full week
    assert fetched["week_start"] == "2026-03-09" and fetched["days"] == 7
    [row] = [w for w in await api.ok("get", f"/deals/{deal}/stats?weeks=1&until=2026-03-09") if
             w["week_start"] == "2026-03-09"]
    assert (row["likes"], row["comments"], row["saves"], row["reach"], row["followers"]) == (
        sum(100 + i for i in range(6)), 60, 30, 6000, 2005)
    assert row["engagement_rate"] == round((615 + 60 + 30) / 6000, 4)
    # Every request for insights carried the token in the header only; an unconnected deal → 409.
    other, _plan = await launched(api)
    assert (await api.call("post", f"/deals/{other}/stats/fetch", {})).status_code == 409


async def test_co7_weekly_insights_timer_fetches_the_week_just_ended(api, graph) -> None:
    deal, _item = await scheduled(api)                              # connected on Monday 2 March, 12:00
    week = local(2026, 3, 2, 0, 0)
    for i in range(7):
        graph.state.daily[int((week + timedelta(days=i)).timestamp())] = {"likes": 10, "reach": 100}
    await at_time(api, local(2026, 3, 9, 9, 0).astimezone(UTC))     # next Monday 09:00
    [row] = [w for w in await api.ok("get", f"/deals/{deal}/stats?weeks=1&until=2026-03-02")
             if w["week_start"] == "2026-03-02"]
    assert (row["likes"], row["reach"], row["comments"]) == (70, 700, None)
    graph.script("insights", (400, RATE_LIMITED))                   # the next week's fetch is refused
    await at_time(api, local(2026, 3, 16, 9, 0).astimezone(UTC))

    async def after() -> tuple[list, bool]:
        from shared.infra import Timer

        async with api.app.state.runtime.db.transaction() as session:
            failed = (await session.execute(select(AuditEntry.action, AuditEntry.detail).where(
                AuditEntry.action == "stats.fetch_failed"))).all()
            nxt = (await session.execute(select(Timer).where(Timer.key == f"insights:{deal}:2026-03-23"))).scalar()
            return [tuple(f) for f in failed], nxt is not None and nxt.fired_at is None

    failed, next_scheduled = api.in_app(after)
    assert [(a, d["week_start"]) for a, d in failed] == [("stats.fetch_failed", "2026-03-09")]
    assert "request limit reached" in failed[0][1]["error"] and next_scheduled   # and it goes on next week


async def test_co4_approval_page_shows_uploaded_media_on_signed_urls(api, graph) -> None:
    deal, plan = await launched(api)
    ref = (await upload(api, deal)).json()["ref"]
    await api.ok("post", f"/plans/{plan['id']}/items", {"date": "2026-03-03", "kind": "feed", "caption": "x",
                                                        "media": [ref, "https://cdn.example.kz/b.jpg"]})
    token = (await api.ok("post", f"/plans/{plan['id']}/submit"))["token"]
    page = await api.ok("get", f"/api/content/approvals/{token}", as_="public")
    [thumb, external] = page["items"][0]["media"]
    assert external == "https://cdn.example.kz/b.jpg" and "/media/" in thumb and "publish_error" not in page["items"][0]
    served = await api.client.get("/media/" + thumb.rsplit("/media/", 1)[1])
    assert served.status_code == 200 and served.content == JPEG


async def test_ig_crash_after_media_publish_is_not_posted_twice(api, graph, monkeypatch) -> None:
    """The publish went out but our transaction did not commit (a crash between the Graph answer and the
    commit): the container id was committed before, so the timer's next run finds it PUBLISHED."""
    from content import plans as plans_module

    deal, item = await scheduled(api)
    real = plans_module.mark_published
    crashes = [RuntimeError("the process died before the commit")]

    async def crash_once(*args, **kwargs):
        if crashes:
            raise crashes.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr(plans_module, "mark_published", crash_once)
    await at_time(api, WHEN)
    assert len(graph.state.posts) == 1 and (await item_now(api, deal, item["id"]))["status"] == "scheduled"
    await at_time(api, WHEN + timedelta(seconds=2))               # the scheduler retries the timer
    done = await item_now(api, deal, item["id"])
    assert done["status"] == "published" and graph.state.calls("media_publish") == 1
    assert len(graph.state.posts) == 1 and len(await published_events(api, item["id"])) == 1


async def test_ig_connect_when_instagram_does_not_answer_is_502_and_stores_nothing(api, monkeypatch) -> None:
    from shared.testing import free_port

    monkeypatch.setenv("INSTAGRAM_GRAPH_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    deal, _plan = await launched(api)
    down = await api.call("put", f"/deals/{deal}/instagram", {"ig_user_id": IG, "access_token": IG_TOKEN})
    assert down.status_code == 502 and down.json()["errors"][0]["field"] == "instagram"
    assert await api.ok("get", f"/deals/{deal}/instagram") == {"connected": False}


# ---------------------------------------------------------------- "test connection" and thumbnails


async def test_ig_test_connection_keeps_the_last_graph_error_until_it_works(api_any, graph) -> None:
    api = api_any
    deal, _plan = await launched(api)
    assert (await api.call("post", f"/deals/{deal}/instagram/test")).status_code == 404     # nothing connected
    await api.ok("put", f"/deals/{deal}/instagram", {"ig_user_id": IG, "access_token": IG_TOKEN})
    assert (await api.call("post", f"/deals/{deal}/instagram/test", as_=ANALYST)).status_code == 403
    assert (await api.call("post", f"/deals/{deal}/instagram/test", as_=OTHER)).status_code == 404
    ok = await api.ok("post", f"/deals/{deal}/instagram/test")
    assert ok["ok"] is True and ok["status"] == "ok" and ok["username"] == "aigerim.cakes"
    graph.account(IG, "IGAAT-rotated")                                 # the stored token has expired
    refused = await api.call("post", f"/deals/{deal}/instagram/test")
    assert refused.status_code == 200 and IG_TOKEN not in refused.text
    body = refused.json()
    assert body["ok"] is False and body["status"] == "error"
    assert (body["last_error"]["kind"], body["last_error"]["code"]) == ("token_expired", 190)
    assert "Session has expired" in body["last_error"]["message"]
    assert (await api.ok("get", f"/deals/{deal}/instagram"))["last_error"]["code"] == 190    # kept
    graph.account(IG, IG_TOKEN)                                         # fixed on Instagram's side: retry
    again = await api.ok("post", f"/deals/{deal}/instagram/test", as_=LEAD)
    assert again["ok"] is True and again["last_error"] is None
    assert all(IG_TOKEN.encode() not in row.payload for row in await api.outbox())


async def test_media_thumbnails_signed_in_plans_and_on_the_clients_page(api_any, graph) -> None:
    api = api_any
    deal, plan = await launched(api)
    photo = (await upload(api, deal)).json()
    clip = (await upload(api, deal, MP4, "clip.mp4")).json()
    await api.ok("post", f"/plans/{plan['id']}/items", {
        "date": "2026-03-03", "kind": "feed", "caption": "x",
        "media": [photo["ref"], clip["ref"], "https://cdn.example.org/a.jpg"]})
    item = (await api.plans(deal))[0]["items"][0]
    thumbs = item["thumbnails"]
    assert [(t["ref"], t["video"], t["token"] is None) for t in thumbs] == [
        (photo["ref"], False, False), (clip["ref"], True, False), ("https://cdn.example.org/a.jpg", False, True)]
    served = await api.client.get(f"/media/{thumbs[0]['token']}")
    assert served.status_code == 200 and served.content == JPEG and served.headers["content-type"] == "image/jpeg"
    one = await api.ok("get", f"/plans/{plan['id']}")
    assert [t["ref"] for t in one["items"][0]["thumbnails"]] == [photo["ref"], clip["ref"], thumbs[2]["ref"]]
    sent = await api.ok("post", f"/plans/{plan['id']}/submit")
    token = sent["approval_url"].rsplit("/", 1)[1]
    public = (await api.client.get(f"/public/content/approvals/{token}")).json()
    public_thumbs = public["items"][0]["thumbnails"]
    assert [t["video"] for t in public_thumbs] == [False, True, False] and public_thumbs[0]["token"]
    assert "publish_error" not in public["items"][0]


async def test_media_upload_refusals_name_the_file_and_store_nothing(api, graph, monkeypatch) -> None:
    from content import media

    deal, _plan = await launched(api)
    before = set(media.media_dir().iterdir())
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    for data, name, said in ((b"", "empty.jpg", "empty"), (png, "photo.png", "JPEG"),
                             (b"<svg onload=alert(1)>", "x.svg", "JPEG")):
        refused = await upload(api, deal, data, name)
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["field"] == "file" and said in error["message"]
    monkeypatch.setattr(media, "MAX_BYTES", len(JPEG) - 1)
    too_big = await upload(api, deal)
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "file"
    assert "MB" in too_big.json()["errors"][0]["message"]
    assert (await upload(api, deal, as_=ANALYST)).status_code == 403
    assert set(media.media_dir().iterdir()) == before                   # nothing half-written
