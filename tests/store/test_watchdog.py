"""The statement watchdog: one thread, woken only by a deadline earlier than the one it sleeps for."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from wonkalytics.store import engine
from wonkalytics.store.engine import _Watchdog


class _CountingCondition(threading.Condition):
    def __init__(self) -> None:
        super().__init__()
        self.wakeups = 0
        self.sleeping = False

    def wait(self, timeout: float | None = None) -> bool:
        self.sleeping = True
        woke = super().wait(timeout)
        self.sleeping = False
        self.wakeups += 1
        return woke


def _watchdog(monkeypatch: pytest.MonkeyPatch, cuts: list[int]) -> tuple[_Watchdog, _CountingCondition]:
    monkeypatch.setattr(engine, "_cut", cuts.append)
    watchdog = _Watchdog()
    watchdog._cond = condition = _CountingCondition()
    return watchdog, condition


def _wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        event.wait(0.01)
    return bool(predicate())


def test_transactions_with_one_timeout_do_not_wake_the_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    cuts: list[int] = []
    watchdog, condition = _watchdog(monkeypatch, cuts)
    ident = threading.get_ident()
    watchdog.disarm(ident, watchdog.arm(ident, 30.0))
    assert _wait_until(lambda: condition.sleeping)  # asleep until that first deadline
    before = condition.wakeups
    pause = threading.Event()
    for _ in range(50):  # the writer's transactions, each followed by a wait for the next batch
        watchdog.disarm(ident, watchdog.arm(ident, 30.0))
        pause.wait(0.002)
    assert condition.wakeups - before <= 1  # was one wake-up per transaction
    assert cuts == []


def test_an_earlier_deadline_still_wakes_it_and_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    cuts: list[int] = []
    watchdog, condition = _watchdog(monkeypatch, cuts)
    watchdog.arm(1, 30.0)
    assert _wait_until(lambda: condition.sleeping)
    watchdog.arm(2, 0.05)  # a store with a shorter statement timeout: due long before the sleeper looks
    assert _wait_until(lambda: cuts == [2], timeout=5.0)
    watchdog.disarm(1, None)
