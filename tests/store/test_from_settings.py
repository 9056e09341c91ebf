"""One construction of the table's store from settings (the recorder, PromptLayer, the seed, the CLI)."""

from __future__ import annotations

from pathlib import Path

from wonkalytics.recorder import Recorder
from wonkalytics.settings import load_settings
from wonkalytics.store.sql import TableStore


def test_the_store_takes_url_table_create_and_timeouts_from_settings(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", table="calls_x", create_table=False,
                             connect_timeout=2.5, statement_timeout=7.0)
    store = TableStore.from_settings(settings)
    assert (store.name, store.connect_timeout, store.statement_timeout) == ("calls_x", 2.5, 7.0)
    assert store.url == settings.url()
    assert store.known_columns() is None and not (tmp_path / "a.db").exists()  # nothing done before first use
    created = TableStore.from_settings(settings, create=True)
    assert "score" in created.columns  # the default table, made on first use as asked


def test_the_recorder_checks_updates_through_the_assembled_checker(tmp_path: Path) -> None:
    recorder = Recorder(load_settings(database_url=f"sqlite:///{tmp_path / 'b.db'}", table="calls_y",
                                      spool_dir=tmp_path / "spool"))
    try:
        assert recorder.check("score", 87, "response_id", 3.0) == 87.0  # the default table's score is a float
        seen: list[tuple[str, object]] = []
        recorder._check = lambda field, value, key_field, timeout: seen.append((field, value)) or value
        assert recorder.score("resp-none", 5, wait=False) is None
        assert seen == [("score", 5)]  # score() asked the checker, not a table sink
    finally:
        recorder.shutdown(5)
