"""Crash and failure scenarios of the daemon (see harness.py)."""

from __future__ import annotations

SCENARIOS: list = []
