"""The ClickHouse fixture: skips with a reason on a laptop, fails under CI=true when the server is away."""

from __future__ import annotations

import pytest
from tests import conftest

pytestmark = pytest.mark.db


def test_require_clickhouse_answers_with_the_server_url() -> None:
    url = conftest.require_clickhouse()
    from clickhouse_driver import Client

    client = Client.from_url(url)
    try:
        assert client.execute("SELECT 1") == [(1,)]
    finally:
        client.disconnect()


@pytest.mark.parametrize("in_ci", [False, True])
def test_unreachable_server_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch, in_ci: bool) -> None:
    monkeypatch.setattr(conftest, "CLICKHOUSE_URL", "clickhouse://default@127.0.0.1:1/default")  # nothing listens
    monkeypatch.setattr(conftest, "IN_CI", in_ci)
    outcome = pytest.fail.Exception if in_ci else pytest.skip.Exception
    with pytest.raises(outcome, match=r"ClickHouse at clickhouse://default@127\.0\.0\.1:1/default unreachable"):
        conftest.require_clickhouse()
