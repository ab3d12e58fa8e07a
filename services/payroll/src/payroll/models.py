"""SQLAlchemy models of the `payroll` service only."""

from __future__ import annotations

from shared.db import make_base

Base = make_base()
