"""Issue 9: every refusal a service answers carries a message code the gateway translates.

A static walk (ast) of the services' and the shared library's source fails when:
- a `DomainError` (or a subclass: NotFound, Conflict, Forbidden, Gone…) is raised without `errors=` — raise
  coded refusals with `M.error(field, M.CODE, **params)` / `M.refusal(Conflict, field, M.CODE, …)`, or
  `Kind(message, errors=[M.item(…), …])` when one refusal names several fields;
- an error item is written by hand (`{"field": …, "message": …}`) without its `code`;
- a literal `"code"` is not one of `shared.messages.CODES`, or `M.NAME` names no code.
The gateway side (a code without a translation) is services/gateway/tests/test_messages.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

from shared import messages as M

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("services/*/src/**/*.py"), *(ROOT / "shared" / "src").rglob("*.py")])
BASE_ERRORS = {"DomainError", "NotFound", "Conflict", "Forbidden"}

# Raises and items that are no refusal a person meets: (file, function) — keep this list short.
UNCODED = {
    # The gateway's signed assertion and the X-Zabota-* headers it sends always agree; a mismatch (or a header
    # without an assertion) is a misconfigured or forged caller, answered in the operator's English.
    ("shared/src/shared/auth.py", "api_guard"),
    # DomainError's own fallback item (for a raise listed here) and Litestar's request-body validation
    # (msgspec's English about a JSON shape; the gateway's forms check their fields before they call).
    ("shared/src/shared/errors.py", "__init__"),
    ("shared/src/shared/errors.py", "validation_handler"),
}
# The gateway translates: its own error items are already in the reader's language (msgids).
SERVICES_ONLY = ("services/gateway/",)


def parsed() -> list[tuple[str, ast.Module]]:
    return [(str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))) for path in SOURCES]


def error_classes(trees: list[tuple[str, ast.Module]]) -> set[str]:
    """DomainError and every class that derives from it (by name, across all the sources)."""
    family, grew = set(BASE_ERRORS), True
    while grew:
        grew = False
        for _path, tree in trees:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in family and any(
                        _name(base) in family for base in node.bases):
                    family.add(node.name)
                    grew = True
    return family


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _functions(tree: ast.Module) -> dict[int, str]:
    """id(node) → the name of the innermost function it sits in."""
    owner: dict[int, str] = {}

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            owner[id(child)] = name
            visit(child, name)

    visit(tree, "<module>")
    return owner


def uncoded_raises(trees: list[tuple[str, ast.Module]]) -> list[str]:
    family, found = error_classes(trees), []
    for path, tree in trees:
        owner = _functions(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            call = node.exc
            if _name(call.func) in family and not any(k.arg == "errors" for k in call.keywords) \
                    and (path, owner.get(id(node))) not in UNCODED:
                found.append(f"{path}:{node.lineno} {ast.unparse(call)[:100]}")
    return found


def _is_item_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _name(node.func) == "item"


def hand_written_items(trees: list[tuple[str, ast.Module]]) -> list[str]:
    found = []
    for path, tree in trees:
        owner = _functions(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Dict) or path.startswith(SERVICES_ONLY) \
                    or (path, owner.get(id(node))) in UNCODED:
                continue
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            spreads_an_item = any(k is None and _is_item_call(v) for k, v in zip(node.keys, node.values, strict=True))
            if {"field", "message"} <= keys and "code" not in keys and not spreads_an_item:
                found.append(f"{path}:{node.lineno} {ast.unparse(node)[:100]}")
    return found


def unknown_codes(trees: list[tuple[str, ast.Module]]) -> list[str]:
    found = []
    for path, tree in trees:
        imports_m = any(isinstance(n, ast.ImportFrom) and n.module == "shared" and any(
            a.name == "messages" and a.asname == "M" for a in n.names) for n in ast.walk(tree))
        for node in ast.walk(tree):
            if imports_m and isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "M" and node.attr.isupper() and not hasattr(M, node.attr):
                found.append(f"{path}:{node.lineno} M.{node.attr}")
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "code" and isinstance(value, ast.Constant) \
                            and isinstance(value.value, str) and "field" in {
                                k.value for k in node.keys if isinstance(k, ast.Constant)} \
                            and value.value not in M.CODES:
                        found.append(f"{path}:{node.lineno} code {value.value!r}")
    return found


def test_issue9_every_refusal_is_raised_with_a_message_code() -> None:
    trees = parsed()
    assert len(trees) > 100, "the walk found the services' source"
    assert uncoded_raises(trees) == [], "raise M.error(field, M.CODE, …) / M.refusal(Kind, field, M.CODE, …)"


def test_issue9_no_error_item_is_written_by_hand_without_its_code() -> None:
    assert hand_written_items(parsed()) == [], "build error items with M.item(field, M.CODE, …)"


def test_issue9_codes_named_in_the_source_are_in_the_catalogue() -> None:
    assert unknown_codes(parsed()) == []


def test_the_walk_catches_an_uncoded_raise_a_hand_written_item_and_an_unknown_code() -> None:
    tree = ast.parse(
        "from shared import messages as M\n"
        "class Gone(DomainError): pass\n"
        "def f():\n"
        "    raise Gone(f'{x} has gone', field='x')\n"
        "def g():\n"
        "    raise DomainError('bad', errors=[{'field': 'a', 'message': 'bad'}])\n"
        "def h():\n"
        "    raise M.error('a', M.NO_SUCH_CODE)\n"
        "def i():\n"
        "    raise M.refusal(Gone, 'x', M.LINK_EXPIRED)\n")
    trees = [("services/x/src/x/y.py", tree)]
    assert [line.split(" ")[0] for line in uncoded_raises(trees)] == ["services/x/src/x/y.py:4"]
    assert [line.split(" ")[0] for line in hand_written_items(trees)] == ["services/x/src/x/y.py:6"]
    assert unknown_codes(trees) == ["services/x/src/x/y.py:8 M.NO_SUCH_CODE"]
