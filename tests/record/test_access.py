from __future__ import annotations

from types import SimpleNamespace

from wonkalytics.record.access import field, safe_str


class Exploding:
    @property
    def role(self) -> str:
        raise RuntimeError("boom")

    def __str__(self) -> str:
        raise RuntimeError("no str either")


def test_field_reads_mappings_and_attributes() -> None:
    assert field({"role": "user"}, "role") == "user"
    assert field(SimpleNamespace(role="tool"), "role") == "tool"
    assert field({"x": 1}, "role") is None
    assert field(None, "role") is None


def test_field_treats_a_raising_property_as_absent() -> None:
    assert field(Exploding(), "role") is None


def test_safe_str_never_raises() -> None:
    assert safe_str("x") == "x"
    assert safe_str(12) == "12"
    assert safe_str(Exploding()) == "<unprintable Exploding>"
