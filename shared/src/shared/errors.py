"""Bad input gets a clear error and changes nothing (DESIGN 9).

Every 4xx body has the same shape: `{"detail": "...", "errors": [{"field": "client.phone", "message": "..."}]}`.
Domain operations raise `DomainError` (422 by default) or `NotFound` / `Conflict`; request bodies that
do not fit their Struct become 422 naming the field.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import time
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.exc import SQLAlchemyError


class DomainError(Exception):
    status_code = HTTP_422_UNPROCESSABLE_ENTITY

    def __init__(self, message: str, field: str | None = None, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or ([{"field": field, "message": message}] if field else [])


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Forbidden(DomainError):
    status_code = 403


def _field_of(key: Any, message: str) -> str | None:
    # msgspec says "Object missing required field `reason`" (Litestar's key is then the body, "data"),
    # or "Object missing required field `phone` - at `$.client`": name the missing field itself.
    missing = re.match(r"Object missing required field `([^`]+)`(?: - at `\$\.?([^`]*)`)?", message)
    if missing and (not key or key == "data"):
        return ".".join(p for p in (missing.group(2), missing.group(1)) if p)
    if key:
        return str(key)
    # msgspec says "... - at `$.client.phone`"
    if "at `$." in message:
        return message.split("at `$.", 1)[1].rstrip("`")
    return None


def validation_handler(_: Request, exc: ValidationException) -> Response:
    errors = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            errors.append({"field": _field_of(item.get("key"), message), "message": message})
    if not errors:
        errors.append({"field": _field_of(None, exc.detail), "message": exc.detail})
    return Response({"detail": "invalid request", "errors": errors}, status_code=HTTP_422_UNPROCESSABLE_ENTITY)


def domain_handler(_: Request, exc: DomainError) -> Response:
    return Response({"detail": exc.message, "errors": exc.errors}, status_code=exc.status_code)


def auth_handler(_: Request, exc: NotAuthorizedException) -> Response:
    return Response({"detail": exc.detail, "errors": []}, status_code=401)


# ------------------------------------------------------------------ transient failures (issue 7 §3, §4)

# PostgreSQL SQLSTATEs that say "not now", not "not this": connection trouble (class 08), serialization
# failures and deadlocks (40), insufficient resources (53: too many connections, disk full), operator
# intervention (57: shutdown, cannot connect now, statement/lock timeout), system errors (58), plus a lock
# not available, a read-only replica after a fail-over, and a table or database that is not there (being
# migrated, renamed or restored).
_PG_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_PG_TRANSIENT_CODES = frozenset({"55P03", "55006", "55000", "25006", "42P01", "42703", "3D000"})
_NETWORK_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED, errno.ECONNRESET,
                             errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE, errno.ENETDOWN, errno.EHOSTDOWN})
# SQLite says the same things in words.
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "no such table", "no such column",
                     "disk i/o error", "unable to open database file", "database or disk is full",
                     "attempt to write a readonly database", "database is busy")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (SQLAlchemy's `orig`, `__cause__`, `__context__`), each once."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen) or len(seen) > 20:
            continue
        seen.append(item)
        todo += [getattr(item, "orig", None), item.__cause__, item.__context__]
    return seen


def _one_is_transient(exc: BaseException) -> bool:
    from nats import errors as nats_errors
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, (sa_exc.IntegrityError, sa_exc.DataError)):
        return False  # the data itself is wrong: retrying changes nothing
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True  # a lost connection, a pool that cannot hand one out in time
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True  # refused, reset, timed out, DNS
    if isinstance(exc, OSError) and (exc.errno in _NETWORK_ERRNOS or "connect call failed" in str(exc).lower()):
        return True  # unreachable network or host (a missing file is not an outage)
    if isinstance(exc, (nats_errors.ConnectionClosedError, nats_errors.TimeoutError, nats_errors.NoRespondersError,
                        nats_errors.StaleConnectionError, nats_errors.OutboundBufferLimitError,
                        nats_errors.ConnectionReconnectingError, nats_errors.ConnectionDrainingError,
                        nats_errors.NoServersError, nats_errors.FlushTimeoutError)):
        return True
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(code, str) and code:
        return code[:2] in _PG_TRANSIENT_CLASSES or code in _PG_TRANSIENT_CODES
    module = type(exc).__module__
    if module.startswith("asyncpg") and type(exc).__name__ in ("ConnectionDoesNotExistError",
                                                               "TooManyConnectionsError"):
        return True
    if module in ("sqlite3", "aiosqlite") or type(exc).__name__ == "OperationalError":
        message = str(exc).lower()
        return any(words in message for words in _SQLITE_TRANSIENT)
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` says "the database or NATS cannot do it now" rather than "this cannot be done".

    Transient: the database or NATS unreachable or restarting, a lost connection, serialization failures,
    deadlocks, lock timeouts, SQLite's "database is locked", a table missing while a migration or a restore
    runs. A transient failure is never the fault of the message or request that met it: consumers wait it
    out without spending the delivery budget, requests answer 503 with Retry-After.
    """
    return any(_one_is_transient(item) for item in _chain(exc))


def describe(exc: BaseException) -> str:
    """One line for logs and operators: the driver's error (not SQLAlchemy's wrapper with the SQL) and its message."""
    root = getattr(exc, "orig", None) or exc
    text = str(root).strip().splitlines()[0] if str(root).strip() else ""
    return f"{type(root).__name__}: {text}"[:500]


class Outage:
    """One log line when a run of transient failures starts, one when it ends (not a traceback per request)."""

    def __init__(self, what: str, logger: logging.Logger | None = None) -> None:
        self.what = what
        self.log = logger or logging.getLogger("shared.errors")
        self.since: float | None = None
        self.count = 0

    @property
    def active(self) -> bool:
        return self.since is not None

    def begin(self, exc: BaseException) -> None:
        self.count += 1
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning("%s unavailable: %s", self.what, describe(exc))

    def end(self) -> None:
        if self.since is not None:
            self.log.warning("%s available again after %.1fs (%d failures meanwhile)", self.what,
                             time.monotonic() - self.since, self.count)
            self.since = None
            self.count = 0


RETRY_AFTER_SECONDS = 5


def unavailable_handler(request: Request, exc: Exception) -> Response:
    """A database (or NATS) that cannot answer now is a 503 with Retry-After, logged once per outage.

    Any other database error is a bug: a plain 500, logged with its traceback."""
    if not is_transient(exc):
        logging.getLogger("shared.errors").error("unhandled error on %s %s", request.method, request.url.path,
                                                 exc_info=exc)
        return Response({"detail": "Internal Server Error", "errors": []}, status_code=500)
    outage = getattr(request.app.state, "db_outage", None)
    if outage is not None:
        outage.begin(exc)
    return Response({"detail": "the service cannot reach its database or message bus now; try again shortly",
                     "errors": []},
                    status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


exception_handlers: dict[type[Exception], Any] = {
    ValidationException: validation_handler,
    DomainError: domain_handler,
    NotAuthorizedException: auth_handler,
    SQLAlchemyError: unavailable_handler,
    ConnectionError: unavailable_handler,
}
__all__ = ["Conflict", "DomainError", "Forbidden", "HTTPException", "NotFound", "Outage", "exception_handlers",
           "is_transient"]
