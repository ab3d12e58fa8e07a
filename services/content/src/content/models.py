"""SQLAlchemy models of the `content` service only."""

from __future__ import annotations

from shared.db import make_base

Base = make_base()
