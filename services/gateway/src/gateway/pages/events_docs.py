"""`/docs/events`: the event catalogue (issue 14) — every subject, whether partners may subscribe to it (and on
which NATS account, stream and subject), its fields from the JSON Schema, and the schemas to download.

Rendered from `shared.events.catalogue` in memory — the same text as `docs/events/` (a drift test keeps the
checked-in copy equal), so an image without the docs folder serves it too. Open to anyone (partners are not
staff; nothing in it is secret) and in every staff member's menu.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from shared.events import catalogue

from gateway.rendering import page
from gateway.roles import PUBLIC_LISTED

SCHEMA_MEDIA_TYPE = "application/schema+json"


@lru_cache(maxsize=1)
def _files() -> dict[str, str]:
    return catalogue.render()


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_type_of(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type_of(schema.get('items') or {})}"
    if "format" in schema:
        return f"{kind} ({schema['format']})"
    return str(kind)


def _fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    body = schema
    if "$ref" in schema:
        body = schema.get("$defs", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
    required = set(body.get("required") or [])
    return [{"name": name, "type": _type_of(prop), "required": name in required,
             "description": prop.get("description") or catalogue.ENVELOPE_FIELDS.get(name, "")}
            for name, prop in (body.get("properties") or {}).items()]


def event_catalogue() -> list[dict[str, Any]]:
    """The subjects grouped by publishing service: [{service, events: [...]}]."""
    files = _files()
    channels = json.loads(files["asyncapi.json"]).get("channels", {})
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, text in files.items():
        if not path.startswith("schemas/"):
            continue
        schema = json.loads(text)
        subject = schema["title"]
        channel = channels.get(subject, {})
        groups.setdefault(subject.split(".", 1)[0], []).append({
            "subject": subject,
            "version": channel.get("x-zabota-version"),
            "public": bool(schema.get("x-zabota-public")),
            "stream": schema.get("x-zabota-stream"),
            "description": schema.get("description") or "",
            "partner": channel.get("x-zabota-partner"),
            "fields": _fields(schema),
            "schema_url": f"/docs/events/schemas/{subject}.json",
        })
    return [{"service": service, "events": sorted(events, key=lambda e: e["subject"])}
            for service, events in sorted(groups.items())]


@get("/docs/events", name="events_docs", opt=PUBLIC_LISTED)
async def events_docs(request: Request) -> Response:
    return page(request, "pages/events_docs.html",
                {"groups": event_catalogue(), "partner_account": catalogue.PARTNER_ACCOUNT,
                 "partner_stream": catalogue.PARTNER_STREAM, "headers": catalogue.HEADERS})


@get("/docs/events/schemas/{name:str}", name="event_schema", opt=PUBLIC_LISTED)
async def event_schema(name: FromPath[str]) -> Response:
    text = _files().get(f"schemas/{name}") if name.endswith(".json") else None
    if text is None:
        raise NotFoundException("no such event schema")
    return Response(text, media_type=SCHEMA_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@get("/docs/events/asyncapi.json", name="event_asyncapi", opt=PUBLIC_LISTED)
async def event_asyncapi() -> Response:
    return Response(_files()["asyncapi.json"], media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="asyncapi.json"'})


routes = [events_docs, event_schema, event_asyncapi]
