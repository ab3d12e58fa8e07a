"""NATS handlers of the engagement service's deadlines (issue 12): EN-3 first responses past their target and
EN-4 missed check rounds are fined like every other deadline (PAY-6: `deadline_fines["EN-3"]` / `["EN-4"]`,
0 until the agency sets an amount), undone when met later or waived, and count in PAY-7's deadline compliance.
A durable consumer of its own on the ENGAGEMENT stream (`payroll-engagement`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.consumer import Subscription
from shared.events.engagement import (
    EngagementDeadlineBreached,
    EngagementDeadlineMet,
    EngagementDeadlineWaived,
)

from payroll.content_handlers import deadline_handlers

if TYPE_CHECKING:
    from shared.service import Runtime

CONSUMER = "payroll-engagement"


def handlers(rt: Runtime) -> dict[str, Any]:
    return deadline_handlers(rt, EngagementDeadlineMet, EngagementDeadlineBreached, EngagementDeadlineWaived,
                             "care inbox")


def subscription(rt: Runtime) -> Subscription:
    return Subscription(CONSUMER, handlers(rt))
