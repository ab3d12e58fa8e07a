"""The committed event catalogue (docs/events) is exactly what the msgspec Structs generate, and every
subject follows `<service>.<aggregate>.<event>.v<N>` on a JetStream stream of its own service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shared.bus import STREAMS, stream_for
from shared.events import Event, catalogue, load_catalogue

COMMITTED = catalogue.DEFAULT_OUT


def _files(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_text("utf-8") for p in sorted(folder.rglob("*")) if p.is_file()}


def _definition(schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema of the event itself out of a `{"$ref": ..., "$defs": ...}` document."""
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return schema["$defs"][ref.split("/")[-1]]
    return schema


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What makes `new` incompatible with `old` for an existing subject version (DESIGN: add fields with
    defaults only). Type changes are judged on the property's schema text, nested definitions included."""
    old_def, new_def = _definition(old), _definition(new)
    old_props, new_props = old_def.get("properties", {}), new_def.get("properties", {})
    problems = [f"field {name!r} removed" for name in old_props if name not in new_props]
    old_required = set(old_def.get("required", []))
    for name in sorted(set(new_def.get("required", [])) - old_required):
        problems.append(f"field {name!r} is required now" + ("" if name in old_props else " (new, without default)"))
    for name in old_props:
        if name not in new_props:
            continue
        before = {k: v for k, v in old_props[name].items() if k not in ("description", "default")}
        after = {k: v for k, v in new_props[name].items() if k not in ("description", "default")}
        if json.dumps(before, sort_keys=True) != json.dumps(after, sort_keys=True):
            problems.append(f"field {name!r} changed type: {before} -> {after}")
    old_defs, new_defs = old.get("$defs", {}), new.get("$defs", {})
    for name, definition in old_defs.items():
        if name == old.get("$ref", "").split("/")[-1] or name not in new_defs:
            continue
        if json.dumps(definition.get("properties"), sort_keys=True) != json.dumps(
                new_defs[name].get("properties"), sort_keys=True):
            problems.extend(f"{name}: {p}" for p in breaking_changes(definition, new_defs[name]))
    return problems


def test_committed_catalogue_matches_the_structs(tmp_path: Path) -> None:
    catalogue.write(tmp_path)
    generated, committed = _files(tmp_path), _files(COMMITTED)
    if generated == committed:
        return
    missing = sorted(set(generated) - set(committed))
    stale = sorted(set(committed) - set(generated))
    differ = sorted(rel for rel in set(generated) & set(committed) if generated[rel] != committed[rel])
    breaking: list[str] = []
    for rel in differ:
        if rel.startswith("schemas/"):
            subject = rel.removeprefix("schemas/").removesuffix(".json")
            for problem in breaking_changes(json.loads(committed[rel]), json.loads(generated[rel])):
                breaking.append(f"  {subject}: {problem}")
    removed = [f"  {rel.removeprefix('schemas/').removesuffix('.json')}: subject removed"
               for rel in stale if rel.startswith("schemas/")]
    lines = ["docs/events/ is out of date with the event Structs in shared/src/shared/events/.",
             "Run `make catalogue` and commit docs/events/."]
    if missing:
        lines.append(f"new: {', '.join(missing)}")
    if differ:
        lines.append(f"changed: {', '.join(differ)}")
    if stale:
        lines.append(f"no longer generated: {', '.join(stale)}")
    if breaking or removed:
        lines += ["", "Some changes break existing subscribers; events evolve only by adding fields with defaults.",
                  "Keep the old version as it was and add a new class with subject ...v<N+1> instead:",
                  *breaking, *removed]
    pytest.fail("\n".join(lines))


def test_breaking_change_detection_names_the_field() -> None:
    import msgspec

    class Before(Event, frozen=True, kw_only=True):
        amount: str
        note: str = ""

    class Added(Event, frozen=True, kw_only=True):
        amount: str
        note: str = ""
        extra: int = 0

    class Broken(Event, frozen=True, kw_only=True):
        amount: int
        required_now: str

    before = msgspec.json.schema(Before)
    assert breaking_changes(before, _renamed(msgspec.json.schema(Added), "Added", "Before")) == []
    problems = breaking_changes(before, _renamed(msgspec.json.schema(Broken), "Broken", "Before"))
    assert "field 'note' removed" in problems
    assert any("'required_now' is required now" in p for p in problems)
    assert any("'amount' changed type" in p for p in problems)


def _renamed(schema: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return json.loads(json.dumps(schema).replace(f'"{old}"', f'"{new}"').replace(f"/{old}", f"/{new}"))


@pytest.mark.parametrize("subject", sorted(load_catalogue()))
def test_subject_is_service_aggregate_event_version_on_its_stream(subject: str) -> None:
    match = catalogue.SUBJECT_RE.match(subject)
    assert match, f"{subject!r} is not <service>.<aggregate>.<event>.v<N> (lower case, N >= 1)"
    assert match["service"].upper() in STREAMS, (
        f"{subject}: no JetStream stream for service {match['service']!r} in shared.bus.STREAMS")
    assert stream_for(subject) == match["service"].upper()
    assert STREAMS[match["service"].upper()] == [f"{match['service']}.>"]


def test_catalogue_is_not_empty_and_classes_are_unique() -> None:
    registry = load_catalogue()
    assert registry, "no events registered"
    names = [cls.__name__ for cls in registry.values()]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"event class names must be unique across services (AsyncAPI components): {duplicates}"
    for subject, cls in registry.items():
        assert cls.subject == subject


def test_asyncapi_references_resolve() -> None:
    doc = json.loads(catalogue.render()["asyncapi.json"])
    assert doc["asyncapi"].startswith("3.")

    def resolve(ref: str) -> Any:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                resolve(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    for subject in load_catalogue():
        channel = doc["channels"][subject]
        assert channel["address"] == subject
        assert channel["x-zabota-stream"] == stream_for(subject)
