"""The files customers' messages carry (issue 11: care inbox attachments).

`MessageFile`: one file of an inbound message, in the order the message lists them (`position`). Its bytes
(at most 20 MB) are kept in the database, like `sop_models.SopFile`, so every replica serves them. Its state is
the fetch's: `pending` (a Telegram `file_id` or a platform URL in `source`, tried by the file fetcher at
`next_try_at`, `tries` so far) → `stored`, or `failed` with `reason_code` (too_large | refused | gave_up |
bad_url) and the platform's or our words in `reason`; a `stored` file becomes `removed` (its bytes gone) after
ENGAGEMENT_FILE_KEEP_DAYS (files.remove_old). An e-mail part is `stored` at once. A message is stored
once (unique per channel and external id), so a redelivered webhook never makes its files twice; `(message_id,
position)` is unique besides.
"""

from __future__ import annotations

from datetime import datetime

from shared.db import UTCDateTime
from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from engagement.models import Base, Message, new_id


class MessageFile(Base):
    __tablename__ = "message_files"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(36), index=True)  # the access check's key
    channel_id: Mapped[str] = mapped_column(String(36))
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(20))  # photo | document | video | voice | … (the channel's word)
    name: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(200), default="")  # "" until the download says
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the platform's figure, then the real one
    # Read only when served (never with a conversation's messages).
    data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    source: Mapped[dict] = mapped_column(JSON, default=dict)  # {"file_id"} | {"url"}
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | stored | failed | removed
    reason_code: Mapped[str | None] = mapped_column(String(20), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Never read through (lazy="raise"): it tells the unit of work to insert the message before its files when
    # both are written in one flush (the inbound batch), as the foreign key needs.
    message: Mapped[Message] = relationship(lazy="raise")

    __table_args__ = (
        UniqueConstraint("message_id", "position", name="uq_message_files_position"),
        Index("ix_message_files_due", "state", "next_try_at"),
        Index("ix_message_files_kept", "state", "stored_at"),   # the hourly look for files kept past their time
    )
