"""Media of plan items (issue 10): the passthrough of the content service's signed, expiring media links,
and the upload of a file to an item from the plan editor.

`GET /media/{token}` is public: the token is the credential (the client's approval page shows the
thumbnails without a login). The pages' Content-Security-Policy allows images from their own origin only
(`img-src 'self'`), so every thumbnail comes through here, never straight from the content service. An
image is answered inline; anything else (a video) as an attachment, so no other type is ever rendered in
the gateway's origin. An expired link is a 410, a forged one a 404, both without a body worth showing.

`POST /content/items/{item_id}/media` (the lead and the deal's manager; the content service decides): the
file is stored by the content service (JPEG, MP4, MOV; at most 100 MB; refusals name the field) and its
`media:<id>` reference is appended to the item's media.
"""

from __future__ import annotations

import httpx
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.i18n import _
from gateway.pages.content import EDITORS, content_errors, is_htmx, plan_context, plan_page
from gateway.rendering import redirect
from gateway.roles import PUBLIC
from gateway.service_client import ServiceClient, ServiceError, ServiceUnavailable

Services = NamedDependency[ServiceClient]
INLINE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
MAX_UPLOAD = 100 * 1024 * 1024
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def _plain(status: int) -> Response:
    return Response(b"", status_code=status, headers={"Cache-Control": "no-store"})


@get("/media/{token:str}", name="media_file", opt=PUBLIC)
async def media_file(services: Services, token: FromPath[str]) -> Response:
    """The file behind a signed media link, fetched from the content service's public route."""
    if not token or len(token) > 2000 or not set(token) <= TOKEN_CHARS:
        return _plain(404)
    try:
        upstream = await services.http.get(f"{services._base('content')}/public/content/media/{token}",
                                           timeout=httpx.Timeout(120.0, connect=3.0))
    except httpx.HTTPError:
        raise ServiceUnavailable("content") from None
    if upstream.status_code in (404, 410):
        return _plain(upstream.status_code)
    if upstream.status_code != 200:
        raise ServiceUnavailable("content")
    content_type = upstream.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if content_type not in INLINE_TYPES:
        headers["Content-Disposition"] = "attachment"
        content_type = content_type if content_type.startswith("video/") else "application/octet-stream"
    else:
        headers["Content-Disposition"] = "inline"
    return Response(upstream.content, media_type=content_type, headers=headers)


@post("/content/items/{item_id:str}/media", name="content_item_media", opt=EDITORS,
      request_max_body_size=MAX_UPLOAD + 1024 * 1024)
async def content_item_media(request: Request, services: Services, item_id: FromPath[str]) -> Response:
    """Upload a photo or a video to an item: stored by the content service, then added to the item's media."""
    form = await request.form()
    plan_id = str(form.get("plan_id") or "")
    upload = form.get("file")
    errors: dict[str, str] = {}
    try:
        plan = await services.get("content", f"/plans/{plan_id}") if plan_id else None
    except ServiceError as exc:
        if exc.status_code != 404:
            raise
        plan = None
    item = next((i for i in (plan or {}).get("items", []) if i["id"] == item_id), None)
    if plan is None or item is None:
        return Response(_("Open the plan and try again."), status_code=422, media_type="text/plain")
    if not isinstance(upload, UploadFile) or not upload.filename:
        errors = {"file": _("Choose a photo (JPEG) or a video (MP4, MOV).")}
    else:
        data = await upload.read()
        built = httpx.Request("POST", "http://x", files={"file": (upload.filename, data,
                                                                  upload.content_type or "application/octet-stream")})
        try:
            stored = (await services.raw("POST", "content", f"/deals/{plan['deal_id']}/media", content=built.read(),
                                         content_type=built.headers["content-type"], accept="application/json")).json()
            await services.patch("content", f"/items/{item_id}", json={"media": [*item.get("media", []),
                                                                                 stored["ref"]]})
        except ServiceError as exc:
            if exc.status_code not in (403, 409, 413, 422):
                raise
            errors = content_errors(exc, "file")
            if "file" in errors:
                errors["file"] = media_refusal(exc)
    if not errors and not is_htmx(request):
        return redirect(request, f"/content/plans/{plan_id}")
    message = " ".join(errors.values())
    ctx = await plan_context(request, services, plan_id, edit_errors={item_id: message} if errors else None,
                             notice="" if errors else _("Media added."))
    return plan_page(request, ctx, 422 if errors else 200)


def media_refusal(exc: ServiceError) -> str:
    """The content service's refusal of a file, in the user's language (its words are English codes)."""
    said = " ".join(str(e.get("message") or "") for e in exc.errors) or exc.detail
    if exc.status_code == 413 or "MB" in said:
        return _("The file is too big: at most 100 MB.")
    if "empty" in said:
        return _("The file is empty.")
    return _("Instagram publishes JPEG photos and MP4 or MOV videos only.")


routes = [media_file, content_item_media]
