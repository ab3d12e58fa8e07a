"""Generate the event catalogue from the registered msgspec Structs — never written by hand.

    uv run python -m shared.events.catalogue [--out docs/events]      (or: make catalogue)

Writes into the output folder:
- `schemas/<subject>.json`: one JSON Schema (draft 2020-12) per subject, from `msgspec.json.schema`;
- `asyncapi.json`: an AsyncAPI 3.0 document: a channel per subject with its payload schema, the
  envelope and NATS headers documented, the JetStream stream each subject is stored in, and the
  dead-letter subjects;
- `README.md`: an index.

Which events partners may subscribe to is the `public` flag of the registration (`@event(..., public=...)`,
public by default, `system.*` internal, dead letters never): the AsyncAPI document names, for each public
channel, the NATS account (PARTNERS), the stream (PUBLIC) and the subject a partner uses;
`deploy/components/nats/accounts.conf` exports exactly `partner_subjects()` (tests/deploy checks it).

Files of the folder that the catalogue no longer produces are removed, so a deleted event leaves
nothing behind. `shared/tests/test_catalogue.py` fails when the committed folder differs from what
this generates.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import msgspec

from shared.bus import DUPLICATE_WINDOW_SECONDS, STREAMS, stream_for
from shared.events import Event, load_catalogue

ROOT = Path(__file__).resolve().parents[4]
DEFAULT_OUT = ROOT / "docs" / "events"
SUBJECT_RE = re.compile(r"^(?P<service>[a-z][a-z0-9_]*)\.(?P<aggregate>[a-z][a-z0-9_]*)\."
                        r"(?P<event>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)$")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_FIELDS = {
    "event_id": "Unique id of this event (a UUID). Also sent as the `Nats-Msg-Id` header, so JetStream drops "
                "a re-sent copy within its duplicate window, and consumers record it to apply each event once.",
    "occurred_at": "When the fact happened (RFC 3339, UTC). It may lie in the past (imports, late webhooks): "
                   "rules are evaluated on this time, not on the time of receipt.",
    "deal_id": "The deal the event is about, where one applies.",
    "client_id": "The client the event is about, where one applies.",
}
HEADERS = {
    "Nats-Msg-Id": "= event_id; JetStream de-duplication key.",
    "traceparent": "W3C trace context of the change that produced the event (one trace per client journey).",
    "tracestate": "W3C trace state, when present.",
}
# Partners (issue 14): the NATS account they connect to, the stream there that holds the public subjects,
# and the publishing services whose events are exported one subject at a time (never by a wildcard), so
# that a new event of theirs is not shared by accident.
PARTNER_ACCOUNT = "PARTNERS"
PARTNER_STREAM = "PUBLIC"
PER_SUBJECT_EXPORT = frozenset({"payroll"})
INTERNAL_STREAMS = frozenset({"SYSTEM", "DEADLETTER"})
PARTNERS_TEXT = (
    f"Partners connect with their own user of the NATS account `{PARTNER_ACCOUNT}` (read-only: no publish right "
    f"on any event subject). That account imports only the public subjects (`x-zabota-public`) and stores them "
    f"in its JetStream stream `{PARTNER_STREAM}`; a partner creates a durable pull consumer on `{PARTNER_STREAM}` "
    "named after itself, filtered on the subjects it wants, with `inbox_prefix=_INBOX_<partner>`, and acks each "
    "message. Internal subjects (`system.*`, `deadletter.*`) are never exported. See "
    "`examples/partner_subscriber.py` and deploy/README.md."
)
EVOLUTION = (
    "Events evolve only by adding fields with defaults: a consumer must ignore fields it does not know, "
    "and an existing version never loses a field, never gains a required one and never changes a type. "
    "A breaking change is a new event class with subject `...v<N+1>`, published alongside the old version "
    "until its consumers have moved."
)


def is_public(subject: str, registry: dict[str, type[Event]] | None = None) -> bool:
    """Whether partners may subscribe to `subject` (a registered event marked public)."""
    registry = load_catalogue() if registry is None else registry
    cls = registry.get(subject)
    return cls is not None and cls.public and stream_for(subject) not in INTERNAL_STREAMS


def partner_subjects(registry: dict[str, type[Event]] | None = None) -> list[str]:
    """The subjects the PARTNERS account imports: `<service>.>` where every event of that service is public
    (or it has none yet), else the public subjects one by one."""
    registry = load_catalogue() if registry is None else registry
    out: list[str] = []
    for stream, patterns in STREAMS.items():
        if stream in INTERNAL_STREAMS:
            continue
        prefix = stream.lower()
        subjects = sorted(s for s in registry if s.split(".", 1)[0] == prefix)
        if prefix not in PER_SUBJECT_EXPORT and all(is_public(s, registry) for s in subjects):
            out.extend(patterns)
        else:
            out.extend(s for s in subjects if is_public(s, registry))
    return out


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _doc(cls: type[Event]) -> str:
    return " ".join((cls.__doc__ or "").split())


def subject_schema(subject: str, cls: type[Event]) -> dict[str, Any]:
    schema = msgspec.json.schema(cls)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{subject}.json",
        "title": subject,
        "description": _doc(cls),
        "x-zabota-stream": stream_for(subject),
        "x-zabota-public": is_public(subject, {subject: cls}),
        **schema,
    }


def asyncapi(registry: dict[str, type[Event]]) -> dict[str, Any]:
    subjects = sorted(registry)
    classes = [registry[s] for s in subjects]
    _, components = msgspec.json.schema_components(classes, ref_template="#/components/schemas/{name}")
    headers_schema = {
        "type": "object",
        "properties": {name: {"type": "string", "description": text} for name, text in HEADERS.items()},
        "required": ["Nats-Msg-Id"],
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for subject, cls in zip(subjects, classes, strict=True):
        match = SUBJECT_RE.match(subject)
        stream = stream_for(subject)
        message_id = subject.replace(".", "_")
        messages[message_id] = {
            "name": cls.__name__,
            "title": subject,
            "summary": _doc(cls),
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/NatsHeaders"},
            "payload": {"$ref": f"#/components/schemas/{cls.__name__}"},
        }
        public = is_public(subject, registry)
        where = (f" Partners: account `{PARTNER_ACCOUNT}`, stream `{PARTNER_STREAM}`, subject `{subject}`."
                 if public else " Internal: not exported to partners.")
        channels[subject] = {
            "address": subject,
            "title": subject,
            "description": f"{_doc(cls)} Stored in JetStream stream `{stream}`.{where}",
            "messages": {cls.__name__: {"$ref": f"#/components/messages/{message_id}"}},
            "x-zabota-stream": stream,
            "x-zabota-version": int(match["version"]) if match else None,
            "x-zabota-public": public,
        }
        if public:
            channels[subject]["servers"] = [{"$ref": "#/servers/partners"}, {"$ref": "#/servers/local"}]
            channels[subject]["x-zabota-partner"] = {
                "account": PARTNER_ACCOUNT, "stream": PARTNER_STREAM, "subject": subject}
        operations[f"publish_{message_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{subject}"},
            "summary": f"The {match['service'] if match else '?'} service publishes {subject} (through its outbox).",
            "messages": [{"$ref": f"#/channels/{subject}/messages/{cls.__name__}"}],
        }
        if public:
            operations[f"partner_receive_{message_id}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{subject}"},
                "summary": f"A partner receives {subject}: account `{PARTNER_ACCOUNT}`, a durable pull consumer "
                           f"on stream `{PARTNER_STREAM}` filtered on `{subject}`.",
                "messages": [{"$ref": f"#/channels/{subject}/messages/{cls.__name__}"}],
                "x-zabota-partner": {"account": PARTNER_ACCOUNT, "stream": PARTNER_STREAM, "subject": subject},
            }
    channels["deadletter.{consumer}"] = {
        "address": "deadletter.{consumer}",
        "title": "dead letters",
        "description": "A message a durable consumer failed to process after its maximum number of deliveries: "
                       "the original payload, with the original headers plus Zabota-Original-Subject, "
                       "Zabota-Failure-Reason and Zabota-Deliveries. Stored in stream `DEADLETTER`; also kept "
                       "in the consumer service's `dead_letters` table for operators.",
        "parameters": {"consumer": {"description": "The durable consumer's name."}},
        "messages": {"DeadLetter": {"$ref": "#/components/messages/deadletter"}},
        "x-zabota-stream": "DEADLETTER",
        "x-zabota-public": False,
    }
    messages["deadletter"] = {
        "name": "DeadLetter",
        "title": "dead letter",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                "Zabota-Original-Subject": {"type": "string"},
                "Zabota-Failure-Reason": {"type": "string"},
                "Zabota-Deliveries": {"type": "string"},
                "Nats-Msg-Id": {"type": "string", "description": "<consumer>:<event_id>"},
            },
        },
        "payload": {"description": "The original event, unchanged."},
    }
    envelope = "\n".join(f"- `{name}`: {text}" for name, text in ENVELOPE_FIELDS.items())
    streams = "\n".join(f"- `{name}`: {', '.join(f'`{s}`' for s in subj)}" for name, subj in STREAMS.items())
    description = (
        "The integration contract of Zabota's services, for our own services and for partners who subscribe "
        "to NATS. Generated from the msgspec Structs in `shared.events` by `make catalogue`; never edit by "
        "hand.\n\n"
        "Subjects are `<service>.<aggregate>.<event>.v<N>`. Every payload is a JSON object that carries the "
        f"envelope fields:\n{envelope}\n\n"
        f"Headers: `Nats-Msg-Id` (= event_id) and the W3C trace context (`traceparent`, `tracestate`).\n\n"
        f"JetStream streams (file storage, limits retention, duplicate window {DUPLICATE_WINDOW_SECONDS} s):\n"
        f"{streams}\n\n"
        f"Partners: {PARTNERS_TEXT}\n\n"
        f"Evolution: {EVOLUTION}"
    )
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Zabota events", "version": "1.0.0", "description": description},
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:4222", "protocol": "nats",
                      "description": "`make up` (or the NATS_URL it prints when 4222 was taken)."},
            "partners": {"host": "nats.example.com:4222", "protocol": "nats",
                         "description": f"The production NATS cluster; partners authenticate as their own user "
                                        f"of account `{PARTNER_ACCOUNT}` and read stream `{PARTNER_STREAM}`.",
                         "x-zabota-account": PARTNER_ACCOUNT},
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": {"NatsHeaders": headers_schema, **components},
        },
        "x-zabota-streams": {name: {"subjects": subj, "duplicate_window_seconds": DUPLICATE_WINDOW_SECONDS}
                             for name, subj in STREAMS.items()},
        "x-zabota-evolution": EVOLUTION,
        "x-zabota-partners": {"account": PARTNER_ACCOUNT, "stream": PARTNER_STREAM,
                              "subjects": partner_subjects(registry), "description": PARTNERS_TEXT},
    }


def readme(registry: dict[str, type[Event]]) -> str:
    lines = [
        "# Event catalogue",
        "",
        "Generated by `make catalogue` (`uv run python -m shared.events.catalogue --out docs/events`) from the",
        "msgspec Structs in `shared/src/shared/events/`. Do not edit: `shared/tests/test_catalogue.py` fails when",
        "this folder differs from what the code generates.",
        "",
        "- `asyncapi.json`: AsyncAPI 3.0, a channel per subject, with the envelope, headers and JetStream streams",
        "- `schemas/<subject>.json`: JSON Schema (2020-12) of each event's payload",
        "",
        EVOLUTION,
        "",
        PARTNERS_TEXT,
        "",
        "| subject | stream | public | event | description |",
        "|---|---|---|---|---|",
    ]
    for subject in sorted(registry):
        cls = registry[subject]
        public = "yes" if is_public(subject, registry) else "no"
        lines.append(f"| [`{subject}`](schemas/{subject}.json) | {stream_for(subject)} | {public} | {cls.__name__} | "
                     f"{_doc(cls).replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def render(registry: dict[str, type[Event]] | None = None) -> dict[str, str]:
    """Every file of the catalogue: relative path -> text."""
    registry = load_catalogue() if registry is None else registry
    files = {"asyncapi.json": _dump(asyncapi(registry)), "README.md": readme(registry)}
    for subject in sorted(registry):
        files[f"schemas/{subject}.json"] = _dump(subject_schema(subject, registry[subject]))
    return files


def write(out: Path, files: dict[str, str] | None = None) -> list[str]:
    """Write the catalogue into `out`, removing files it no longer produces; returns what changed."""
    files = render() if files is None else files
    out.mkdir(parents=True, exist_ok=True)
    changed = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")
            changed.append(rel)
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and rel not in files:
            path.unlink()
            changed.append(rel)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the event catalogue (JSON Schema + AsyncAPI).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    changed = write(args.out)
    print(f"event catalogue: {len(load_catalogue())} subjects in {args.out}; "
          + (f"changed: {', '.join(changed)}" if changed else "unchanged"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
