"""SQLAlchemy models of the `engagement` service only."""

from __future__ import annotations

from shared.db import make_base

Base = make_base()
