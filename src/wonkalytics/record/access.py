"""Compatibility home of :mod:`wonkalytics.access` (shared by record/ and store/, so it sits below both)."""

from wonkalytics.access import field, safe_str

__all__ = ["field", "safe_str"]
