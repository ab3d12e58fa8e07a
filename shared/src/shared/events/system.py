"""Events of the platform itself (used by tests and benchmarks of the bus)."""

from __future__ import annotations

from shared.events import Event, event


@event("system.probe.recorded.v1")
class ProbeRecorded(Event, frozen=True, kw_only=True):
    """A probe: carries a sequence number; consumers record it. Used to test and measure the bus."""

    seq: int
    note: str = ""
