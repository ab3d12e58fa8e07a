"""Events published by the `engagement` service."""

from __future__ import annotations

from shared.events import Event, event  # noqa: F401
