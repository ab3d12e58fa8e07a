"""Events published by the `content` service."""

from __future__ import annotations

from shared.events import Event, event  # noqa: F401
