"""Bad input gets a clear error and changes nothing (DESIGN 9).

Every 4xx body has the same shape: `{"detail": "...", "errors": [{"field": "client.phone", "message": "..."}]}`.
Domain operations raise `DomainError` (422 by default) or `NotFound` / `Conflict`; request bodies that
do not fit their Struct become 422 naming the field.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.status_codes import HTTP_422_UNPROCESSABLE_ENTITY


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


exception_handlers: dict[type[Exception], Any] = {
    ValidationException: validation_handler,
    DomainError: domain_handler,
    NotAuthorizedException: auth_handler,
}
__all__ = ["Conflict", "DomainError", "Forbidden", "HTTPException", "NotFound", "exception_handlers"]
