"""Events published by the `content` service."""

from __future__ import annotations

from datetime import date, datetime

from shared.events import Event, event


@event("content.post.published.v1")
class PostPublished(Event, frozen=True, kw_only=True):
    """A post was published on a client's account (CO-5). The first one meets CL-9 in the clients service.
    Minimal shape added by the clients service; the content service may add fields with defaults."""

    post_id: str
    published_at: datetime
    kind: str = "feed"  # feed, story, reel, … : any string (a new kind must not dead-letter the event)


@event("content.plan.submitted.v1")
class PlanSubmitted(Event, frozen=True, kw_only=True):
    """CO-4: a content plan was sent to the client for approval (round `round`, 1 for the first)."""

    plan_id: str
    period_no: int
    number: int
    round: int
    manager: str


@event("content.plan.approved.v1")
class PlanApproved(Event, frozen=True, kw_only=True):
    """CO-4: the client approved a plan on the signed link (CO-2: plan 1 opens the period's publishing)."""

    plan_id: str
    period_no: int
    number: int
    round: int
    manager: str


@event("content.plan.changes_requested.v1")
class PlanChangesRequested(Event, frozen=True, kw_only=True):
    """CO-4: the client asked for changes with `comments` comments; the manager addresses each and resubmits."""

    plan_id: str
    period_no: int
    number: int
    round: int
    manager: str
    comments: int = 0


@event("content.deadline.met.v1")
class ContentDeadlineMet(Event, frozen=True, kw_only=True):
    """CAL-3 / CO-3: a plan was submitted for approval in time. `revises_breach` is true when the fact,
    recorded late but dated in time, turns an earlier breach of this deadline into met (payroll then
    undoes the fine of that breach, as for a waiver)."""

    deadline_id: str
    rule: str
    owner: str
    due_at: datetime
    met_at: datetime
    plan_id: str | None = None
    revises_breach: bool = False


@event("content.deadline.breached.v1")
class ContentDeadlineBreached(Event, frozen=True, kw_only=True):
    """CAL-3 / CO-3: a plan was not submitted for approval by its due time. Payroll fines it per rule (PAY-6)."""

    deadline_id: str
    rule: str
    owner: str
    due_at: datetime
    plan_id: str | None = None


@event("content.deadline.waived.v1")
class ContentDeadlineWaived(Event, frozen=True, kw_only=True):
    """CAL-3: a content deadline was waived (who and why; a lost deal waives its open ones); a fine for
    its breach, if any, is undone."""

    deadline_id: str
    rule: str
    owner: str
    waived_by: str
    reason: str
    due_at: datetime | None = None
    plan_id: str | None = None


@event("content.cadence.missed.v1")
class CadenceMissed(Event, frozen=True, kw_only=True):
    """CO-5: at the daily check time a current client's day had no feed post (`what` = "feed"), or its
    stories were due (a 3-day gap) and none went out (`what` = "stories"). `day` is the agency's local date.
    Payroll fines it per rule (PAY-6, 0 by default)."""

    day: date
    what: str
    manager: str


@event("content.client_request.submitted.v1")
class ClientRequestSubmitted(Event, frozen=True, kw_only=True):
    """CO-6: on their signed link the client asks to publish something of their own; the manager answers."""

    request_id: str
    manager: str
    day: date | None = None


@event("content.client_request.answered.v1")
class ClientRequestAnswered(Event, frozen=True, kw_only=True):
    """CO-6: the manager approved or declined (with the reason) a client's request to publish."""

    request_id: str
    decision: str
    reason: str | None = None
    by: str = ""
