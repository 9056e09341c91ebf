"""An offline, OpenAI-compatible HTTP server for tests, demos and benchmarks.

The official ``openai`` SDK talks real HTTP to it on 127.0.0.1: chat completions and responses,
stream or not, the Azure URL scheme, ``GET /v1/models``. Answers are deterministic (same prompt,
same text) and each request can ask for a behaviour - N chunks, slow streams, HTTP errors, an error
event or a cut connection mid-stream - through its model name or an ``extra_body`` field; see
:mod:`wonkalytics.testing.scenarios`.

Example::

    import openai
    from wonkalytics.testing import FakeOpenAI, Scenario

    with FakeOpenAI() as fake, openai.OpenAI(base_url=fake.base_url, api_key="test", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="fake-chunks-5",  # or model="gpt-4o-mini", extra_body=Scenario(chunks=5).extra_body()
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert fake.requests[-1].body["stream_options"] == {"include_usage": True}

Pass ``max_retries=0`` when injecting failures: the SDK retries 429, 5xx and lost connections.
From a shell: ``python -m wonkalytics.testing --port 8000``.
"""

from wonkalytics.testing.content import SENTENCES, Answer, plan_answer, prompt_text
from wonkalytics.testing.fake import FakeOpenAI, serve
from wonkalytics.testing.scenarios import MODEL_PREFIX, SCENARIO_FIELD, Scenario, ScenarioError, scenario_for
from wonkalytics.testing.server import FAKE_MODELS, FakeOpenAIServer, RecordedRequest

__all__ = [
    "FAKE_MODELS",
    "MODEL_PREFIX",
    "SCENARIO_FIELD",
    "SENTENCES",
    "Answer",
    "FakeOpenAI",
    "FakeOpenAIServer",
    "RecordedRequest",
    "Scenario",
    "ScenarioError",
    "plan_answer",
    "prompt_text",
    "scenario_for",
    "serve",
]
