"""Every user-facing string is translated in both catalogues."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from gateway import i18n

GATEWAY = Path(__file__).resolve().parents[1]
METHOD_MAP = [("src/gateway/**.py", "python"), ("src/gateway/templates/**.html", "jinja2")]
OPTIONS = {"src/gateway/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extracted_msgids() -> set[str]:
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(GATEWAY), METHOD_MAP, OPTIONS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", sorted(i18n.LANGUAGES))
def test_catalogue_translates_every_string_in_the_code(language: str) -> None:
    with open(i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        catalog = read_po(po)
    translated = {(m.id[0] if isinstance(m.id, tuple) else m.id) for m in catalog
                  if m.id and m.string and all(m.string if isinstance(m.string, tuple) else [m.string])
                  and not m.fuzzy}
    missing = extracted_msgids() - translated
    assert not missing, f"untranslated in {language}: {sorted(missing)}"


def test_python_strings_follow_the_request_language() -> None:
    token = i18n.activate("ru")
    try:
        assert i18n._("Wrong login or password.") == "Неверный логин или пароль."
    finally:
        i18n.deactivate(token)
    token = i18n.activate("en")
    try:
        assert i18n._("Wrong login or password.") == "Wrong login or password."
    finally:
        i18n.deactivate(token)
    assert i18n.normalize("EN") == "en" and i18n.normalize("de") is None
