"""The dashboard tests reuse the read tests' seeded tables (the same rows on every database)."""

from tests.read.conftest import _dispose_engines, rows, seeded

__all__ = ["_dispose_engines", "rows", "seeded"]
