"""Translations: gettext catalogues read from the .po files at startup (no compile step).

Source strings are English; the agency works in Russian, so `ru` is the default. The language of the
current request lives in a context variable set by the session middleware, which is what `_()` in
Python and `_()` / `{% trans %}` in templates read.
"""

from __future__ import annotations

import gettext as _gettext
from contextvars import ContextVar, Token
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES: dict[str, str] = {"ru": "Русский", "kk": "Қазақша", "en": "English", "zh": "中文"}
DEFAULT_LANGUAGE = "ru"

_current: ContextVar[str] = ContextVar("zabota_language", default=DEFAULT_LANGUAGE)
# The agency's default (Settings, issue 9): new accounts and visitors who have not chosen start in it.
_agency_default: list[str] = [DEFAULT_LANGUAGE]


def set_agency_default(language: str) -> None:
    _agency_default[0] = normalize(language) or DEFAULT_LANGUAGE


def agency_default() -> str:
    return _agency_default[0]


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated later, where it is shown."""
    return message


@cache
def translations(language: str) -> _gettext.GNUTranslations:
    """The catalogue of one language, built in memory from its .po file."""
    with open(LOCALE_DIR / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        catalog = read_po(po, locale=language)
    mo = BytesIO()
    write_mo(mo, catalog, use_fuzzy=False)
    mo.seek(0)
    return _gettext.GNUTranslations(mo)


def load_all() -> None:
    """Read every catalogue once at startup, so a broken .po fails the start, not a page."""
    for language in LANGUAGES:
        translations(language)


def normalize(language: str | None) -> str | None:
    language = (language or "").strip().lower()
    return language if language in LANGUAGES else None


def activate(language: str) -> Token[str]:
    return _current.set(normalize(language) or DEFAULT_LANGUAGE)


def deactivate(token: Token[str]) -> None:
    _current.reset(token)


def current_language() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


_ = gettext


def field_errors(errors: list[dict[str, str]]) -> dict[str, str]:
    """DomainError's field errors (messages are msgids) as {field: translated message} for a form."""
    return {str(error.get("field")): gettext(str(error.get("message", ""))) for error in errors}
