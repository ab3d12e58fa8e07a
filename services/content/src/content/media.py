"""Media files of plan items: uploaded once, kept under the var directory, referenced from an item's
`media` as `media:<id>`, and served to the Graph API (which fetches media by URL) and to the client's
approval page from a signed, expiring URL: `GET /media/{token}` (public; the token is the credential).

Settings: `CONTENT_PUBLIC_URL` (the public base of this service's `/media` route; default the content
service's URL), `CONTENT_MEDIA_URL_HOURS` (24: a container is fetched when it is created and lives 24 h).
Instagram publishes JPEG images only (CHANNELS.md §2.1), and MP4 / MOV videos.
"""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.errors import NotFound
from shared.settings import var_dir
from shared.signing import BadToken, ExpiredToken, make_token, read_token
from sqlalchemy import select

from content.models import MediaFile
from content.plans import Gone, iso
from content.services import Ctx
from shared import messages as M

PURPOSE = "content-media"
REF = "media:"
TYPES = {"image/jpeg": ".jpg", "video/mp4": ".mp4", "video/quicktime": ".mov"}
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v")
MAX_BYTES = 100 * 1024 * 1024


def media_dir() -> Path:
    path = var_dir() / "content-media"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sniff(head: bytes) -> str | None:
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    return None


async def store(ctx: Ctx, deal_id: str, filename: str, data: bytes) -> MediaFile:
    """Keep an uploaded file (422 naming `file` when it is empty, too big or not JPEG / MP4 / MOV)."""
    if not data:
        raise M.error("file", M.UPLOAD_EMPTY)
    if len(data) > MAX_BYTES:
        raise M.error("file", M.UPLOAD_AT_MOST, limit_mb=MAX_BYTES // (1024 * 1024))
    content_type = sniff(data[:16])
    if content_type is None:
        raise M.error("file", M.UPLOAD_MEDIA_KIND)
    media = MediaFile(deal_id=deal_id, filename=(filename or "upload")[:300], content_type=content_type,
                      size=len(data), sha256=hashlib.sha256(data).hexdigest(), created_by=ctx.actor.login,
                      created_at=ctx.now)
    ctx.session.add(media)
    await ctx.session.flush()
    (media_dir() / media.id).write_bytes(data)
    return media


def public_base(ctx: Ctx) -> str:
    return os.environ.get("CONTENT_PUBLIC_URL") or ctx.settings.service_urls.get("content", "")


def sign(ctx: Ctx, media_id: str) -> str:
    """The signed, expiring token of a media file (the credential of `GET /media/{token}`)."""
    hours = int(os.environ.get("CONTENT_MEDIA_URL_HOURS", "24"))
    return make_token({"m": media_id}, secret_key=ctx.settings.secret_key, purpose=PURPOSE,
                      expires_at=ctx.now + timedelta(hours=hours))


def signed_url(ctx: Ctx, media: MediaFile | str) -> str:
    media_id = media if isinstance(media, str) else media.id
    return f"{public_base(ctx).rstrip('/')}/media/{sign(ctx, media_id)}"


async def add_thumbnails(ctx: Ctx, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each item view `thumbnails`: `[{"ref", "token", "url", "video"}]` in the order of its media.
    An uploaded file (`media:<id>`) gets a fresh signed token (pages show it through the gateway's
    `/media/{token}`, as their CSP allows images from their own origin only); an outside URL keeps its
    URL and no token (a page links to it). One query for all the items' files."""
    ids = {ref[len(REF):] for item in items for ref in item.get("media") or [] if isinstance(ref, str)
           and ref.startswith(REF)}
    files: dict[str, MediaFile] = {}
    if ids:
        rows = await ctx.session.execute(select(MediaFile).where(MediaFile.id.in_(ids)))
        files = {m.id: m for m in rows.scalars()}
    for item in items:
        thumbs = []
        for ref in item.get("media") or []:
            if not isinstance(ref, str):
                continue
            if ref.startswith(REF):
                stored = files.get(ref[len(REF):])
                if stored is None:
                    continue
                token = sign(ctx, stored.id)
                thumbs.append({"ref": ref, "token": token, "url": f"{public_base(ctx).rstrip('/')}/media/{token}",
                               "video": stored.content_type.startswith("video/"), "filename": stored.filename})
            else:
                thumbs.append({"ref": ref, "token": None, "url": ref, "filename": ref.rsplit("/", 1)[-1],
                               "video": ref.lower().split("?")[0].endswith(VIDEO_EXTENSIONS)})
        item["thumbnails"] = thumbs
    return items


def public_urls(ctx: Ctx, refs: list[str]) -> list[str]:
    """What a page shows (the client's approval page): `media:<id>` as a signed URL, a URL as it is."""
    return [signed_url(ctx, ref[len(REF):]) if ref.startswith(REF) else ref for ref in refs]


def view(ctx: Ctx, media: MediaFile) -> dict[str, Any]:
    return {"id": media.id, "ref": REF + media.id, "filename": media.filename, "content_type": media.content_type,
            "size": media.size, "url": signed_url(ctx, media), "created_at": iso(media.created_at)}


async def read(ctx: Ctx, token: str) -> tuple[MediaFile, Path]:
    try:
        data = read_token(token, secret_key=ctx.settings.secret_key, purpose=PURPOSE, now=ctx.now)
        media_id = str(data["m"])
    except ExpiredToken:
        raise M.refusal(Gone, "token", M.MEDIA_LINK_EXPIRED) from None
    except (BadToken, KeyError, TypeError, ValueError):
        raise M.refusal(NotFound, None, M.MEDIA_LINK_INVALID) from None
    media = await ctx.session.get(MediaFile, media_id)
    path = media_dir() / media_id
    if media is None or not path.exists():
        raise M.refusal(NotFound, None, M.MEDIA_NOT_FOUND)
    return media, path


async def resolve(ctx: Ctx, deal_id: str, refs: list[str]) -> list[tuple[str, bool]]:
    """The item's media as (public URL, is_video): `media:<id>` → a fresh signed URL; a URL as it is."""
    out = []
    for ref in refs:
        if ref.startswith(REF):
            media = await ctx.session.get(MediaFile, ref[len(REF):])
            if media is None or media.deal_id != deal_id:
                raise M.error("media", M.MEDIA_UNKNOWN, ref=ref)
            out.append((signed_url(ctx, media), media.content_type.startswith("video/")))
        else:
            out.append((ref, ref.lower().split("?")[0].endswith(VIDEO_EXTENSIONS)))
    return out
