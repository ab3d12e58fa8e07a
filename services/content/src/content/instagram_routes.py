"""Routes of the Instagram connection, uploaded media, automatic publishing's retry (issue 10) and the
CO-7 Insights fetch. Thin: the work is in publishing.py, media.py and insights.py."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from litestar import delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody
from litestar.response import File
from shared.auth import Actor
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from content import access, insights, media, plans, publishing, services, stats_rules
from content.controllers import CLIENT, ctx_of
from content.models import InstagramAccount
from shared import messages as M


@get("/deals/{deal_id:str}/instagram")
async def get_instagram(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                        actor: NamedDependency[Actor]) -> dict[str, Any]:
    """Whether the deal's client has a connected Instagram account (never the token)."""
    ctx = ctx_of(session, runtime, actor)
    await services.load_account(ctx, deal_id)
    return publishing.connection_view(await session.get(InstagramAccount, deal_id))


@put("/deals/{deal_id:str}/instagram", status_code=200)
async def put_instagram(deal_id: str, data: JSONBody[dict[str, Any]], session: NamedDependency[AsyncSession],
                        runtime: NamedDependency[Runtime], actor: NamedDependency[Actor]) -> dict[str, Any]:
    """Connect (or reconnect) `{"ig_user_id", "access_token"}`: checked against the Graph API, the token
    encrypted at rest; the answer never carries it."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    ig_user_id, token = data.get("ig_user_id"), data.get("access_token")
    conn = await publishing.connect(ctx, account, ig_user_id if isinstance(ig_user_id, str) else None,
                                    token if isinstance(token, str) else None)
    return publishing.connection_view(conn)


@delete("/deals/{deal_id:str}/instagram", status_code=200)
async def delete_instagram(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                           actor: NamedDependency[Actor]) -> dict[str, Any]:
    ctx = ctx_of(session, runtime, actor)
    await publishing.disconnect(ctx, await services.load_account(ctx, deal_id))
    return {"connected": False}


@post("/deals/{deal_id:str}/instagram/reveal", status_code=200)
async def reveal_instagram(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                           actor: NamedDependency[Actor]) -> dict[str, str]:
    """The token, to the lead and the responsible manager; audited."""
    ctx = ctx_of(session, runtime, actor)
    return await publishing.reveal(ctx, await services.load_account(ctx, deal_id))


@post("/deals/{deal_id:str}/instagram/test", status_code=200)
async def test_instagram(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                         actor: NamedDependency[Actor]) -> dict[str, Any]:
    """"Test connection" with the stored token: `{"ok", "connected", "status", "last_error", …}` (never the token)."""
    ctx = ctx_of(session, runtime, actor)
    return await publishing.test(ctx, await services.load_account(ctx, deal_id))


@post("/deals/{deal_id:str}/media", status_code=201)
async def upload_media(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                       actor: NamedDependency[Actor],
                       data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]) -> dict[str, Any]:
    """Multipart `file` (JPEG, MP4, MOV) → `{"id", "ref": "media:<id>", "url", …}`; put `ref` in an item's `media`."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    access.require_change(actor, account)
    upload = data.get("file")
    if not isinstance(upload, UploadFile):
        raise M.error("file", M.UPLOAD_REQUIRED)
    stored = await media.store(ctx, deal_id, upload.filename or "upload", await upload.read())
    return media.view(ctx, stored)


@post("/items/{item_id:str}/retry", status_code=200)
async def retry_item(item_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                     actor: NamedDependency[Actor]) -> dict[str, Any]:
    """A failed automatic publication is scheduled again (409 when the item is not failed)."""
    ctx = ctx_of(session, runtime, actor)
    _account, _plan, item = await plans.load_item(ctx, item_id)
    return plans.item_view(await publishing.retry(ctx, item))


@post("/deals/{deal_id:str}/stats/fetch", status_code=200)
async def stats_fetch(deal_id: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime],
                      actor: NamedDependency[Actor], data: JSONBody[dict[str, Any] | None] = None) -> dict[str, Any]:
    """CO-7 from the Insights API: `{"week_start"?: "YYYY-MM-DD"}` (a Monday; default the last full week)."""
    ctx = ctx_of(session, runtime, actor)
    account = await services.load_account(ctx, deal_id)
    access.require_change(actor, account)
    raw = (data or {}).get("week_start")
    if raw is None:
        week = stats_rules.week_start(ctx.now.astimezone(ctx.cal.tz).date()) - timedelta(days=7)
    else:
        try:
            week = date.fromisoformat(str(raw))
        except ValueError:
            raise M.error("week_start", M.DATE_FORMAT) from None
    return await insights.fetch_week(ctx, account, week)


@get(["/media/{token:str}", "/public/content/media/{token:str}"])
async def public_media(token: str, session: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]) -> File:
    """Public: the signed, expiring link is the credential (the Graph API fetches media by URL)."""
    stored, path = await media.read(ctx_of(session, runtime, CLIENT), token)
    return File(path=path, media_type=stored.content_type, filename=stored.filename, content_disposition_type="inline")


api_routes = [get_instagram, put_instagram, delete_instagram, reveal_instagram, test_instagram, upload_media,
              retry_item, stats_fetch]
public_routes = [public_media]
