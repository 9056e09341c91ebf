"""Helpers shared by the fake-server tests (a module of its own: two conftest.py would clash on import)."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

PROMPT = "How is the chocolate river today?"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]


def assert_strictly_typed(model: BaseModel) -> None:
    """The SDK builds models without validation when data does not fit; re-validate what it received
    and insist on no unknown fields anywhere, so a misspelt or missing field fails the test."""
    data = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    type(model).model_validate(data)  # raises on a missing required field or a wrong type
    _assert_no_extra(model, type(model).__name__)


def _assert_no_extra(value: Any, where: str) -> None:
    if isinstance(value, BaseModel):
        assert not value.model_extra, f"{where} has unknown fields {sorted(value.model_extra)}"
        for name in type(value).model_fields:
            _assert_no_extra(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _assert_no_extra(item, f"{where}[{i}]")
