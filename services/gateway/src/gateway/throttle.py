"""Sign-in throttling (issue 8 §8): after `GATEWAY_LOGIN_MAX_FAILURES` (5) failed passwords for one
login, or `GATEWAY_LOGIN_MAX_FAILURES_PER_ADDRESS` (20) from one address, within
`GATEWAY_LOGIN_WINDOW_MINUTES` (15), further tries wait until the oldest of those failures leaves the
window. A throttled try is not checked at all (so it tells nothing about the password and costs no
hashing); a success clears its login's failures.

The failures are rows in the gateway's database (`login_failures`), so the count survives a restart
and covers every replica; rows older than the window are deleted as new failures come in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import GatewayConfig
from gateway.models import LoginFailure
from gateway.staff import normalize_login

MAX_FIELD = 64


def _key(value: str) -> str:
    return (value or "")[:MAX_FIELD]


async def _free_at(session: AsyncSession, column, value: str, limit: int, since: datetime,
                   window: timedelta) -> datetime | None:
    """When the count of failures for `value` drops below `limit` again (None: below it now).

    With failures t1 > t2 > … (newest first) inside the window, the count drops below `limit` when the
    `limit`-th newest one leaves the window.
    """
    query = (select(LoginFailure.at).where(column == value, LoginFailure.at > since)
             .order_by(LoginFailure.at.desc()).offset(limit - 1).limit(1))
    at = await session.scalar(query)
    return None if at is None else at + window


async def retry_after(session: AsyncSession, config: GatewayConfig, login: str, address: str,
                      now: datetime) -> timedelta | None:
    """How long this login/address must wait before its next try, or None if it may try now."""
    since = now - config.login_window
    waits = [
        await _free_at(session, LoginFailure.login, _key(normalize_login(login)), config.login_max_failures,
                       since, config.login_window),
        await _free_at(session, LoginFailure.address, _key(address), config.address_max_failures,
                       since, config.login_window),
    ]
    until = max((w for w in waits if w is not None), default=None)
    if until is None or until <= now:
        return None
    return until - now


async def record_failure(session: AsyncSession, config: GatewayConfig, login: str, address: str,
                         now: datetime) -> None:
    await session.execute(delete(LoginFailure).where(LoginFailure.at <= now - config.login_window))
    session.add(LoginFailure(login=_key(normalize_login(login)), address=_key(address), at=now))
    await session.flush()


async def clear_failures(session: AsyncSession, login: str) -> None:
    """A successful sign-in resets its login's count (the address keeps its own)."""
    await session.execute(delete(LoginFailure).where(LoginFailure.login == _key(normalize_login(login))))
