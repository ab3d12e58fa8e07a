"""EN-5 "ask the client" (issue 11): an agent who cannot answer forwards the question to the client account's
contact person. The question gets a signed, expiring link (`shared.signing`, purpose `ask-client`) that the
gateway turns into the client's answer page; the conversation waits for the client (status `waiting_client`,
its first-response clock paused) and returns to the agent, open, with the answer.

Public JSON (no API token; the signed token is the authority): `GET /ask/{token}` → the question;
`POST /ask/{token}` `{"answer"}` → recorded once (a second answer is a 409). The same under
`/public/engagement/ask/{token}`, where the gateway's client answer page (`/answer/{token}`) calls it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath
from shared.auth import Actor
from shared.clock import Clock
from shared.errors import Conflict, DomainError, NotFound
from shared.signing import BadToken, ExpiredToken, make_token, read_token
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engagement import access, client_notices, quality, rules
from engagement.models import ClientQuestion, Conversation, new_id
from engagement.services import get_conversation
from shared import messages as M

PURPOSE = "ask-client"
LINK_DAYS = 7


class Gone(DomainError):
    status_code = 410


def question_out(q: ClientQuestion) -> dict[str, Any]:
    return {"id": q.id, "question": q.question, "asked_by": q.asked_by, "asked_at": q.asked_at,
            "expires_at": q.expires_at, "answer": q.answer, "answered_at": q.answered_at,
            "notice": client_notices.notice_out(q)}


async def ask(session: AsyncSession, actor: Actor, conversation_id: str, question: str, *, secret_key: str,
              clock: Clock) -> dict[str, Any]:
    access.require_writer(actor)
    conversation = await get_conversation(session, actor, conversation_id)
    question = question.strip()
    if not question:
        raise M.error("question", M.REQUIRED)
    now = clock.now()
    row = ClientQuestion(id=new_id(), conversation_id=conversation.id, question=question, asked_by=actor.login,
                         asked_at=now, expires_at=now + timedelta(days=LINK_DAYS))
    session.add(row)
    await client_notices.plan_notice(session, row, conversation.account, now)
    conversation.status = rules.WAITING_CLIENT
    await session.flush()
    await quality.refresh(session, conversation, clock)  # EN-5: the response clock pauses
    token = make_token({"q": row.id}, secret_key=secret_key, purpose=PURPOSE, expires_at=row.expires_at)
    return {**question_out(row), "token": token, "account": conversation.account, "deal_id": conversation.deal_id}


async def questions_of(session: AsyncSession, conversation_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(select(ClientQuestion).where(ClientQuestion.conversation_id == conversation_id)
                                 .order_by(ClientQuestion.asked_at, ClientQuestion.id))
    return [question_out(q) for q in rows.scalars()]


async def _question(session: AsyncSession, token: str, secret_key: str, clock: Clock) -> ClientQuestion:
    try:
        data = read_token(token, secret_key=secret_key, purpose=PURPOSE, now=clock.now())
    except ExpiredToken as exc:
        raise M.refusal(Gone, None, M.LINK_EXPIRED) from exc
    except BadToken as exc:
        raise M.refusal(NotFound, None, M.QUESTION_NOT_FOUND) from exc
    row = await session.get(ClientQuestion, data.get("q") if isinstance(data, dict) else None)
    if row is None:
        raise M.refusal(NotFound, None, M.QUESTION_NOT_FOUND)
    return row


async def answer(session: AsyncSession, token: str, text: str, *, secret_key: str, clock: Clock) -> ClientQuestion:
    row = await _question(session, token, secret_key, clock)
    text = text.strip()
    if not text:
        raise M.error("answer", M.REQUIRED)
    if row.answered_at is not None:
        raise M.refusal(Conflict, "answer", M.QUESTION_ANSWERED)
    now = clock.now()
    row.answer, row.answered_at = text, now
    conversation = await session.get(Conversation, row.conversation_id)
    if conversation.first_answered_at is None:   # the response clock was paused while the client was asked
        conversation.paused_seconds = (conversation.paused_seconds or 0) + rules.response_seconds(row.asked_at, now)
    open_questions = (await session.execute(select(ClientQuestion.id).where(
        ClientQuestion.conversation_id == conversation.id, ClientQuestion.answered_at.is_(None),
        ClientQuestion.id != row.id))).first()
    if conversation.status == rules.WAITING_CLIENT and open_questions is None:
        conversation.status = rules.OPEN
    await quality.refresh(session, conversation, clock)
    return row


class AnswerIn(msgspec.Struct, forbid_unknown_fields=True):
    answer: str


@get(["/ask/{token:str}", "/public/engagement/ask/{token:str}"], include_in_schema=False)
async def read_question(request: Request, session: AsyncSession, token: FromPath[str]) -> dict[str, Any]:
    runtime = request.app.state.runtime
    row = await _question(session, token, runtime.settings.secret_key, runtime.clock)
    return {"question": row.question, "asked_at": row.asked_at, "answered": row.answered_at is not None,
            "answer": row.answer}


@post(["/ask/{token:str}", "/public/engagement/ask/{token:str}"], status_code=200, include_in_schema=False)
async def post_answer(request: Request, session: AsyncSession, token: FromPath[str], data: AnswerIn) -> dict:
    runtime = request.app.state.runtime
    row = await answer(session, token, data.answer, secret_key=runtime.settings.secret_key, clock=runtime.clock)
    return {"answered": True, "answered_at": row.answered_at}


public_routes = [read_question, post_answer]
