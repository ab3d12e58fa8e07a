"""The engagement JSON API under /api/engagement (issue 11's contract). Thin: parse, call services, answer."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post, put
from litestar.params import FromPath
from shared.auth import Actor
from shared.service import Runtime
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, assignment, changes, files, notes, sales, services, templates, webform
from engagement import ask_client as ask_client_ops
from engagement.schemas import (
    AgentIn,
    AskClientIn,
    AssignIn,
    ChannelIn,
    ReplyIn,
    StaffAccountsIn,
    StatusIn,
    TagRuleIn,
    TagsIn,
)


@post("/channels", status_code=201)
async def create_channel(request: Request, session: AsyncSession, actor: Actor, runtime: Runtime,
                         data: ChannelIn) -> dict[str, Any]:
    channel = await services.create_channel(session, actor, data, settings=runtime.settings,
                                            clock=runtime.clock)
    return services.channel_out(channel, request.app.state.channels.public_url)


@get("/channels")
async def list_channels(request: Request, session: AsyncSession, actor: Actor) -> list[dict[str, Any]]:
    public_url = request.app.state.channels.public_url
    channels = await services.list_channels(session, actor)
    states = await services.mailbox_states(session, [c.id for c in channels if c.kind == "email"])
    out = []
    for channel in channels:
        item = services.channel_out(channel, public_url)
        if channel.kind == "email":
            item["mailbox"] = states.get(channel.id, {"checked_at": None, "error": None, "idle": False})
        out.append(item)
    return out


@post("/channels/{channel_id:str}/register-webhook", status_code=200)
async def register_webhook(request: Request, actor: Actor, runtime: Runtime, channel_id: FromPath[str]) -> dict:
    sender = runtime.state["sender"]
    return await services.register_webhook(runtime, actor, channel_id, request.app.state.channels.public_url,
                                           sender.client(), request.app.state.channels.telegram_api_url)


@put("/staff/{login:str}/accounts")
async def set_staff_accounts(session: AsyncSession, actor: Actor, runtime: Runtime, login: FromPath[str],
                             data: StaffAccountsIn) -> dict[str, Any]:
    accounts = await services.set_staff_accounts(session, actor, login, data.accounts, runtime.clock)
    return {"login": login, "accounts": accounts}


@put("/agents/{login:str}")
async def set_agent(session: AsyncSession, actor: Actor, runtime: Runtime, login: FromPath[str],
                    data: AgentIn) -> dict[str, Any]:
    agent = await assignment.set_agent(session, actor, login, on_shift=data.on_shift, cap=data.cap,
                                       clear_cap=data.clear_cap, clock=runtime.clock, team=data.team)
    return assignment.agent_out(agent, await services.staff_accounts(session, login))


@get("/agents")
async def list_agents(session: AsyncSession, actor: Actor) -> list[dict[str, Any]]:
    """The care team (lead, senior agents, analysts): each agent's shift, cap, team and served accounts."""
    access.require_roles(actor, access.LEAD, access.INTEGRATION, access.SENIOR, "analyst")
    return await assignment.list_agents(session)


@get("/conversations")
async def list_conversations(session: AsyncSession, actor: Actor, status: str | None = None,
                             channel: str | None = None, assignee: str | None = None, tag: str | None = None,
                             q: str | None = None, limit: int = 50, offset: int = 0, account: str | None = None,
                             category: str | None = None, priority: str | None = None) -> Response:
    limit, offset = max(1, min(limit, 200)), max(0, offset)
    items, total = await services.list_conversations(session, actor, status=status, channel=channel,
                                                     assignee=assignee, tag=tag, q=q, limit=limit, offset=offset,
                                                     account=account, category=category, priority=priority)
    headers = {"X-Total-Count": str(int(total))}
    if isinstance(total, services.CappedTotal):   # counted up to the cap only (services.capped_count)
        headers["X-Total-Count-Capped"] = "true"
    return Response(items, headers=headers)


@get("/conversations/{conversation_id:str}")
async def get_conversation(session: AsyncSession, actor: Actor, conversation_id: FromPath[str]) -> dict[str, Any]:
    detail = await services.conversation_detail(session, actor, conversation_id)
    await files.attach_to(session, detail["messages"])   # each message's attachments (no bytes)
    detail["client_questions"] = await ask_client_ops.questions_of(session, conversation_id)
    detail["notes"] = await notes.notes_of(session, conversation_id)
    return detail


# 20 MB of files arrive base64-encoded in JSON (4/3), with the text: more than Litestar's 10 MB default.
@post("/conversations/{conversation_id:str}/replies", status_code=202, request_max_body_size=30 * 1024 * 1024)
async def post_reply(session: AsyncSession, actor: Actor, runtime: Runtime, conversation_id: FromPath[str],
                     data: ReplyIn) -> dict[str, Any]:
    uploads = [(f.name, f.content_type, f.data) for f in data.files]
    message = await services.reply(session, actor, conversation_id, data.text, runtime.clock, uploads)
    out = services.message_out(message)
    await files.attach_to(session, [out])
    return out


@post("/conversations/{conversation_id:str}/assign", status_code=200)
async def assign(session: AsyncSession, actor: Actor, conversation_id: FromPath[str], data: AssignIn) -> dict:
    c = await services.assign(session, actor, conversation_id, data.agent)
    return {"id": c.id, "assignee": c.assignee}


@post("/conversations/{conversation_id:str}/status", status_code=200)
async def set_status(session: AsyncSession, actor: Actor, runtime: Runtime, conversation_id: FromPath[str],
                     data: StatusIn) -> dict:
    c = await services.set_status(session, actor, conversation_id, data.status, runtime.clock)
    return {"id": c.id, "status": c.status}


@post("/conversations/{conversation_id:str}/tags", status_code=200)
async def change_tags(session: AsyncSession, actor: Actor, conversation_id: FromPath[str], data: TagsIn) -> dict:
    return {"id": conversation_id,
            "tags": await services.change_tags(session, actor, conversation_id, data.add, data.remove)}


@get("/tag-rules")
async def list_tag_rules(session: AsyncSession, actor: Actor) -> list[dict[str, Any]]:
    return [services.tag_rule_out(r) for r in await services.list_tag_rules(session, actor)]


@post("/tag-rules", status_code=201)
async def add_tag_rule(session: AsyncSession, actor: Actor, runtime: Runtime, data: TagRuleIn) -> dict[str, Any]:
    rule = await services.add_tag_rule(session, actor, data.kind, data.value, data.tag, runtime.clock)
    return services.tag_rule_out(rule)


@delete("/tag-rules/{rule_id:str}", status_code=204)
async def delete_tag_rule(session: AsyncSession, actor: Actor, rule_id: FromPath[str]) -> None:
    await services.delete_tag_rule(session, actor, rule_id)


@post("/conversations/{conversation_id:str}/ask-client", status_code=201)
async def ask_client(session: AsyncSession, actor: Actor, runtime: Runtime, conversation_id: FromPath[str],
                     data: AskClientIn) -> dict[str, Any]:
    return await ask_client_ops.ask(session, actor, conversation_id, data.question,
                                    secret_key=runtime.settings.secret_key, clock=runtime.clock)


@get("/webform/{slug:str}")
async def webform_info(session: AsyncSession, actor: Actor, slug: FromPath[str]) -> dict[str, Any]:
    """What the public form page shows (the form's name); 404 for an unknown or inactive form."""
    return await webform.form_info(session, actor, slug)


@post("/webform/{slug:str}", status_code=202)
async def webform_submit(actor: Actor, runtime: Runtime, slug: FromPath[str],
                         data: webform.WebformIn) -> dict[str, Any]:
    """The gateway hands over a visitor's message (integration credential only); stored before the answer."""
    result = await webform.submit(runtime.db, actor, slug, data, runtime.clock)
    if not result["duplicate"] and (processor := runtime.state.get("processor")) is not None:
        processor.wake()
    return result


api_routes = [webform_info, webform_submit, *templates.routes, *files.routes, *notes.routes, *changes.routes, ask_client, list_tag_rules, add_tag_rule, delete_tag_rule, create_channel, list_channels, register_webhook, set_staff_accounts, set_agent, list_agents, list_conversations, get_conversation, post_reply,
              assign, set_status, change_tags, *sales.routes]
