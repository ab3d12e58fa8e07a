"""Operator routes every service with a bus has: dead letters, visible and replayable (DESIGN 4).

`GET /api/<service>/ops/dead-letters` lists the messages a consumer gave up on, with the reason.
`POST /api/<service>/ops/dead-letters/{id}/replay` publishes the message again on its subject (after
the cause is fixed); consumers that applied it before skip it, the one that failed applies it now.
Only the project lead or an integration token may use them.

A dead letter older than the retention period (`ZABOTA_RETENTION_DAYS` less a day) is not replayed (409):
the consumers that applied its event back then may have forgotten its id (retention prunes
`processed_events`), and would apply it a second time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared import messages as M
from shared.auth import Actor
from shared.bus import Outgoing
from shared.errors import Conflict, Forbidden, NotFound
from shared.infra import DeadLetter

OPERATOR_ROLES = ("lead", "integration")


def _require_operator(actor: Actor) -> None:
    if actor.role not in OPERATOR_ROLES:
        raise M.refusal(Forbidden, None, M.LEAD_DEAD_LETTERS)


def _view(letter: DeadLetter) -> dict:
    return {"id": letter.id, "consumer": letter.consumer, "subject": letter.subject, "event_id": letter.event_id,
            "deliveries": letter.deliveries, "reason": letter.reason, "failed_at": letter.failed_at.isoformat()}


@get("/ops/dead-letters")
async def list_dead_letters(session: NamedDependency[AsyncSession], actor: NamedDependency[Actor],
                            limit: Annotated[int, Parameter(ge=1, le=500)] = 100) -> list[dict]:
    _require_operator(actor)
    rows = (await session.execute(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit))).scalars()
    return [_view(row) for row in rows]


@post("/ops/dead-letters/{letter_id:int}/replay", status_code=200)
async def replay_dead_letter(letter_id: Annotated[int, Parameter(ge=1, le=2**63 - 1)], request: Request, session: NamedDependency[AsyncSession],
                             actor: NamedDependency[Actor]) -> dict:
    _require_operator(actor)
    letter = await session.get(DeadLetter, letter_id)
    if letter is None:
        raise M.refusal(NotFound, "letter_id", M.DEAD_LETTER_NOT_FOUND)
    runtime = request.app.state.runtime
    remembered = timedelta(days=max(runtime.settings.retention_days - 1, 0))
    if letter.failed_at < runtime.clock.now() - remembered:
        raise M.refusal(Conflict, "letter_id", M.DEAD_LETTER_TOO_OLD, days=remembered.days)
    if runtime.bus is None or not runtime.bus.is_connected:
        raise M.refusal(Conflict, None, M.BUS_DOWN_TRY_AGAIN)
    # A fresh message id: JetStream must not drop it as a duplicate of the original.
    replay_id = f"replay:{letter.id}:{runtime.clock.now().timestamp()}"
    await runtime.bus.publish_many([Outgoing(letter.subject, letter.payload, {"Nats-Msg-Id": replay_id})])
    return {**_view(letter), "replayed_as": replay_id}


ops_routes = [list_dead_letters, replay_dead_letter]
