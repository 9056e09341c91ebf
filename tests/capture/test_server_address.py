"""The API host of a wrapped client, kept beside its URL, follows ``base_url`` when it is set again."""

from __future__ import annotations

import openai

import wonkalytics
from wonkalytics.capture.client import _server_of


def test_the_kept_host_follows_a_new_base_url() -> None:
    with openai.OpenAI(base_url="http://first.example/v1", api_key="k", max_retries=0) as raw:
        client = wonkalytics.wrap(raw)
        assert _server_of(client) == "first.example"
        assert _server_of(client) == "first.example"  # the kept one
        client.base_url = "http://second.example:8080/v1"
        assert _server_of(client) == "second.example"
        assert _server_of(raw) == "first.example"  # the original client is another object, untouched
