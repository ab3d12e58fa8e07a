"""Events published by the `payroll` service."""

from __future__ import annotations

from shared.events import Event, event  # noqa: F401
