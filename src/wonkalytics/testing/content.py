"""Deterministic answers: the same prompt always gets the same text, cut into the same chunks.

Token counts are simple and documented so tests can predict them: prompt tokens = whitespace-separated
words of the prompt text (all message / input texts and the instructions), completion tokens = number
of content chunks.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import Any

from wonkalytics.testing.scenarios import Scenario

__all__ = ["SENTENCES", "Answer", "plan_answer", "prompt_text"]

SENTENCES: tuple[str, ...] = (
    "The chocolate river flows at a steady four hundred litres per minute.",
    "Every golden ticket is logged, timestamped and stored in your own database.",
    "Oompa Loompas report that the everlasting gobstopper is still everlasting.",
    "Latency is low, tokens are counted, and nobody falls into the river.",
    "The great glass elevator goes sideways, slantways and longways.",
    "A fizzy lifting drink lifts the mood of any analytics dashboard.",
    "Snozzberries taste like snozzberries, according to the latest survey.",
    "The inventing room produced forty-two new flavours this quarter.",
    "Each streamed chunk arrives on time, like a well-tempered truffle.",
    "Wonkavision shrinks large responses into small, readable rows.",
    "The candy-coated pencil writes one row per interaction.",
    "Nothing here talks to OpenAI; every answer is made in the factory.",
)
"""The answers the server picks from (by a hash of the prompt) when no fixed content is asked for."""

# Keys under which the chat / responses request formats keep text (message content, input parts,
# tool outputs); nested lists and dicts are walked.
_TEXT_KEYS = ("content", "text", "output", "arguments")
_WORD_PIECES = re.compile(r"\S+\s*")


@dataclass(frozen=True, slots=True)
class Answer:
    """The planned answer of one request."""

    chunks: tuple[str, ...]
    """The content deltas, in order; their concatenation is the answer text."""
    prompt_tokens: int

    @property
    def text(self) -> str:
        """The whole answer."""
        return "".join(self.chunks)

    @property
    def completion_tokens(self) -> int:
        """One token per chunk."""
        return len(self.chunks)


def _collect(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for item in value:
            _collect(item, out)
    elif isinstance(value, dict):
        for key in _TEXT_KEYS:
            if key in value:
                _collect(value[key], out)


def prompt_text(body: dict[str, Any]) -> str:
    """The text of a chat (``messages``) or responses (``instructions`` + ``input``) request."""
    parts: list[str] = []
    for key in ("instructions", "messages", "input"):
        _collect(body.get(key), parts)
    return "\n".join(parts)


def _split_words(text: str) -> tuple[str, ...]:
    pieces = _WORD_PIECES.findall(text)
    if not pieces:
        return (text,) if text else ()
    lead = text[: len(text) - len(text.lstrip())]
    pieces[0] = lead + pieces[0]
    return tuple(pieces)


def _split_even(text: str, n: int) -> tuple[str, ...]:
    n = min(n, len(text))
    if n == 0:
        return ()
    bounds = [len(text) * i // n for i in range(n + 1)]
    return tuple(text[a:b] for a, b in itertools.pairwise(bounds))


def _pool_words(start: int, n: int) -> tuple[str, ...]:
    # Words of the sentence pool, starting at the chosen sentence and wrapping around as often as needed.
    words: list[str] = []
    for sentence in itertools.cycle(SENTENCES[start:] + SENTENCES[:start]):
        words.extend(sentence.split())
        if len(words) >= n:
            break
    return tuple(words[i] if i == 0 else " " + words[i] for i in range(n))


def plan_answer(body: dict[str, Any], scenario: Scenario) -> Answer:
    """Choose the answer and its chunks for a request, deterministically."""
    prompt = prompt_text(body)
    prompt_tokens = len(prompt.split())
    if scenario.content is not None:
        if scenario.chunks is None:
            chunks = _split_words(scenario.content)
        else:
            chunks = _split_even(scenario.content, scenario.chunks)
        return Answer(chunks, prompt_tokens)
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    start = int.from_bytes(digest[:8], "big") % len(SENTENCES)
    n = len(SENTENCES[start].split()) if scenario.chunks is None else scenario.chunks
    return Answer(_pool_words(start, n), prompt_tokens)
