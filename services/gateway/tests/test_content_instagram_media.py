"""Issue 10 in the gateway: the Instagram connection form on the deal's content page (validation beside the
fields, status, the last Graph error with a retry, "test connection" against a Graph stand-in on loopback)
and media thumbnails served through `/media/{token}` (the pages' CSP allows images from their own origin
only) on the plan editor, the calendar and the client's approval page; upload refusals. Real clients and
content processes, as in test_content_pages."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from litestar import Litestar, Request, Response, get
from litestar.testing import AsyncTestClient
from shared.settings import Settings
from shared.signing import make_token
from shared.testing import free_port, make_settings

from .backends import Backend, roster, serve_clients
from .conftest import down_service_urls, gateway_settings, sign_in
from .test_content_pages import HX, LEAD, launched

IG = "17841400000000042"
TOKEN = "IGAAT-gateway-form-token-0001"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x02" * 300
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 300
EXPIRED = {"error": {"message": "Error validating access token: Session has expired.", "type": "OAuthException",
                     "code": 190, "error_subcode": 463, "fbtrace_id": "Agw"}}


class GraphAccount:
    """The smallest Graph stand-in the form needs: `GET /{ig-user-id}?fields=id,username` with a Bearer token
    (CHANNELS.md §2): the account, or the documented error body of an expired token (code 190)."""

    def __init__(self) -> None:
        self.token = TOKEN
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

        @get("/{node:str}")
        async def node(node: str, request: Request) -> Response:
            if node != IG or request.headers.get("authorization") != f"Bearer {self.token}":
                return Response(EXPIRED, status_code=400)
            return Response({"id": IG, "username": "aigerim.cakes"})

        self.server = uvicorn.Server(uvicorn.Config(Litestar([node]), host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def graph():
    standin = GraphAccount()
    yield standin
    standin.stop()


@pytest.fixture
def clients(service_process, nats_server) -> Backend:
    backend = Backend(serve_clients(service_process, nats_server.url), "clients")
    roster(backend)
    return backend


@pytest.fixture
def content(service_process, nats_server, graph, tmp_path) -> Backend:
    url = service_process("content", nats_url=nats_server.url, env={"INSTAGRAM_GRAPH_URL": graph.url})
    return Backend(url, "content")


@pytest.fixture
def settings(tmp_path, clients: Backend, content: Backend) -> Settings:
    return gateway_settings(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
                            service_urls={**down_service_urls(), "clients": clients.base_url, "content": content.base_url})


def csrf_in(html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', html).group(1)


async def test_instagram_form_validates_connects_tests_and_shows_the_last_graph_error_with_a_retry(
        client: AsyncTestClient, clients: Backend, content: Backend, graph: GraphAccount) -> None:
    deal, _plans = await launched(clients, content, "ig-form")
    page_url = f"/content/deals/{deal['id']}/instagram"
    token = await sign_in(client, "manager1")
    card = await client.get(f"/content/deals/{deal['id']}/plans?lang=en", headers=HX)
    assert f'href="{page_url}"' in card.text                               # linked from the deal's content block
    empty = await client.get(page_url + "?lang=en")
    assert empty.status_code == 200 and "not connected" in empty.text and 'id="instagram-connect"' in empty.text
    assert 'id="instagram-test"' not in empty.text

    bad = await client.post(page_url + "?lang=en", headers=HX,
                            data={"_csrf": token, "ig_user_id": "@cakes", "access_token": ""})
    assert bad.status_code == 422
    assert "Enter the numeric id of the Instagram professional account." in bad.text and "Required." in bad.text
    refused = await client.post(page_url + "?lang=en", headers=HX,
                                data={"_csrf": token, "ig_user_id": IG, "access_token": "wrong-token"})
    assert refused.status_code == 422 and "Instagram refused this token (code 190)" in refused.text
    assert "wrong-token" not in refused.text                               # a token is never echoed back

    done = await client.post(page_url + "?lang=en", headers=HX,
                             data={"_csrf": token, "ig_user_id": IG, "access_token": TOKEN})
    assert done.status_code == 200 and "Instagram account connected." in done.text
    assert "@aigerim.cakes" in done.text and TOKEN not in done.text and 'id="instagram-state"' in done.text
    ok = await client.post(page_url + "/test?lang=en", headers=HX, data={"_csrf": token})
    assert ok.status_code == 200 and "The connection works." in ok.text

    graph.token = "IGAAT-rotated-on-instagram"                             # the stored token has expired
    failed = await client.post(page_url + "/test?lang=en", headers=HX, data={"_csrf": token})
    assert failed.status_code == 200 and 'id="instagram-last-error"' in failed.text
    assert "The access token has expired or was revoked (code 190)" in failed.text
    assert "Session has expired." in failed.text and "Retry: test the connection" in failed.text
    again = await client.get(page_url + "?lang=ru")                         # kept until a test succeeds
    assert "Срок действия токена истёк" in again.text
    graph.token = TOKEN
    retried = await client.post(page_url + "/test?lang=en", headers=HX, data={"_csrf": token})
    assert "The connection works." in retried.text and 'id="instagram-last-error"' not in retried.text

    client.cookies.clear()
    await sign_in(client, "analyst")
    read = await client.get(page_url + "?lang=en")
    assert read.status_code == 200 and "@aigerim.cakes" in read.text and 'id="instagram-connect"' not in read.text
    client.cookies.clear()
    other = await sign_in(client, "manager2", "demo")
    assert (await client.get(page_url)).status_code == 404
    assert (await client.post(page_url + "/test", headers=HX, data={"_csrf": other})).status_code == 404

    client.cookies.clear()
    token = await sign_in(client, "manager1")
    gone = await client.post(page_url + "/disconnect?lang=en", headers=HX, data={"_csrf": token})
    assert gone.status_code == 200 and "not connected" in gone.text


async def test_media_thumbnails_come_through_the_gateway_on_the_editor_calendar_and_approval_page(
        client: AsyncTestClient, clients: Backend, content: Backend) -> None:
    deal, plans = await launched(clients, content, "ig-media")
    plan = plans[0]
    token = await sign_in(client, "manager1")
    added = await client.post(f"/content/plans/{plan['id']}/items",
                              data={"_csrf": token, "date": plan["first_day"], "kind": "feed", "caption": "Торт"})
    assert added.status_code in (200, 303)
    item_id = content.call("GET", f"/plans/{plan['id']}", as_=LEAD)["items"][0]["id"]
    upload_url = f"/content/items/{item_id}/media?lang=en"

    text = await client.post(upload_url, headers=HX, data={"_csrf": token, "plan_id": plan["id"]},
                             files={"file": ("notes.txt", b"hello, not a photo", "text/plain")})
    assert text.status_code == 422 and "Instagram publishes JPEG photos and MP4 or MOV videos only." in text.text
    none = await client.post(upload_url, headers=HX, data={"_csrf": token, "plan_id": plan["id"]})
    assert none.status_code == 422 and "Choose a photo (JPEG) or a video (MP4, MOV)." in none.text
    assert content.call("GET", f"/plans/{plan['id']}", as_=LEAD)["items"][0]["media"] == []   # nothing half-written

    photo = await client.post(upload_url, headers=HX, data={"_csrf": token, "plan_id": plan["id"]},
                              files={"file": ("cake.jpg", JPEG, "image/jpeg")})
    assert photo.status_code == 200 and "Media added." in photo.text
    clip = await client.post(upload_url, headers=HX, data={"_csrf": token, "plan_id": plan["id"]},
                             files={"file": ("clip.mp4", MP4, "video/mp4")})
    assert clip.status_code == 200
    thumbs = re.findall(r'<img class="thumb" src="/media/([^"]+)"', clip.text)
    videos = re.findall(r'class="video-link" href="/media/([^"]+)"', clip.text)
    assert len(thumbs) == 1 and len(videos) == 1
    calendar = await client.get(f"/content?lang=en&deal={deal['id']}&at={plan['first_day']}")
    assert re.search(r'<img class="cal-thumb" src="/media/[^"]+"', calendar.text)

    # The passthrough is public (the token is the credential): an image inline, a video as an attachment.
    client.cookies.clear()
    image = await client.get(f"/media/{thumbs[0]}")
    assert image.status_code == 200 and image.content == JPEG
    assert image.headers["content-type"].startswith("image/jpeg") and image.headers["content-disposition"] == "inline"
    video = await client.get(f"/media/{videos[0]}")
    assert video.status_code == 200 and video.headers["content-disposition"] == "attachment"
    assert video.content == MP4
    assert (await client.get("/media/forged.token.here")).status_code == 404
    assert (await client.get("/media/%3Cscript%3E")).status_code == 404
    secret = make_settings("content", database_url="sqlite+aiosqlite:///:memory:").secret_key
    stored = content.call("GET", f"/plans/{plan['id']}", as_=LEAD)["items"][0]["media"][0].removeprefix("media:")
    expired = make_token({"m": stored}, secret_key=secret, purpose="content-media",
                         expires_at=datetime.now(UTC) - timedelta(minutes=1))
    assert (await client.get(f"/media/{expired}")).status_code == 410

    # The client's approval page shows the photo through the gateway too.
    token = await sign_in(client, "manager1")
    sent = await client.post(f"/content/plans/{plan['id']}/submit?lang=en", headers=HX, data={"_csrf": token})
    link = re.search(r'id="approval-url" value="([^"]+)"', sent.text).group(1).removeprefix("http://127.0.0.1")
    client.cookies.clear()
    public = await client.get(link + "?lang=en")
    assert public.status_code == 200 and re.search(r'<img class="preview" src="/media/[^"]+"', public.text)
    assert "img-src 'self'" in public.headers["content-security-policy"]
