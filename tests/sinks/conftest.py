"""Real SDK calls against the offline server, captured as Interactions, and a builder like the writer's.

Until the sinks run in the writer's lanes, these tests drive ``sink.write(ops)`` directly with
the ops the writer would hand them: ``Insert`` of a real call's Interaction, ``Update`` of a score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

import wonkalytics
from wonkalytics.interaction import Interaction, Record
from wonkalytics.ops import Insert
from wonkalytics.record.pipeline import interaction_row
from wonkalytics.record.structured import call_view
from wonkalytics.recorder import Recorder
from wonkalytics.testing import FakeOpenAI

MESSAGES = [
    {"role": "system", "content": "Answer in one short sentence."},
    {"role": "user", "content": "Guess a number between 1 and 10."},
]


class Capturing(Recorder):
    """A recorder that keeps the finished Interactions instead of queueing them."""

    def __init__(self) -> None:
        super().__init__()
        self.interactions: list[Interaction] = []

    def record(self, item: object) -> None:
        assert isinstance(item, Interaction)
        self.interactions.append(item)

    def last(self) -> Interaction:
        assert self.interactions, "no call was recorded"
        return self.interactions[-1]


def build(source: object) -> Record:
    """What the writer's record builder does: the row, and the structured call for sinks that need it."""
    if isinstance(source, Interaction):
        return Record(kind="interaction", event_id=source.event_id, row=interaction_row(source),
                      call=call_view(source))
    assert isinstance(source, dict)
    return Record(kind="event", event_id=str(source.get("event_id") or ""), row=source)


@pytest.fixture
def capture() -> Capturing:
    return Capturing()


@pytest.fixture
def client(fake: FakeOpenAI, capture: Capturing) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0) as raw:
        yield wonkalytics.wrap(raw, recorder=capture)


Call = Callable[..., Interaction]


@pytest.fixture
def call(client: openai.OpenAI, capture: Capturing) -> Call:
    """Make one real call (chat or responses, stream or not, ok / error / aborted); its Interaction."""

    def run(api: str = "chat", *, stream: bool = False, model: str = "gpt-4o-mini", abort: int = 0,
            **kwargs: Any) -> Interaction:
        if api == "chat":
            kwargs.setdefault("messages", MESSAGES)
            create: Callable[..., Any] = client.chat.completions.create
        else:
            kwargs.setdefault("input", "Guess a number between 1 and 10.")
            kwargs.setdefault("instructions", "Answer in one short sentence.")
            create = client.responses.create
        try:
            result = create(model=model, stream=stream, **kwargs)
            if stream:
                for seen, _chunk in enumerate(result, 1):
                    if abort and seen >= abort:  # the caller stops reading after `abort` chunks
                        break
                result.close()
        except openai.APIError:
            pass
        return capture.last()

    return run


def insert(interaction: Interaction) -> Insert:
    """The insert a lane hands its sink: its record built (the lane builds it before ``sink.write``)."""
    return Insert(built=build(interaction))
