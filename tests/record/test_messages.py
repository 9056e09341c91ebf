from __future__ import annotations

import base64
import json
from typing import Any

import openai
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessage
from openai.types.chat.chat_completion_message_function_tool_call import (
    ChatCompletionMessageFunctionToolCall,
    Function,
)
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
)

from wonkalytics.record.messages import (
    chat_message_fields,
    render_content,
    render_conversation,
    responses_message_fields,
)

from .strategies import json_like, odd_text

SEED_MESSAGES = [
    {
        "role": "system",
        "content": "Guess a number between 1 and 10. Respond very shortly with just a single short sentence.",
    },
    {"role": "user", "content": "You must guess a number between 1 and 10."},
]


# --- chat ----------------------------------------------------------------------------------------


def test_seed_messages() -> None:
    assert chat_message_fields({"messages": SEED_MESSAGES}) == {
        "system_msg": SEED_MESSAGES[0]["content"],
        "messages": "user:\nYou must guess a number between 1 and 10.\n\n",
    }


def test_the_last_system_message_wins_and_earlier_ones_are_in_neither_column() -> None:
    """The seed's _map_messages_to_keyvals: only non-system messages are rendered (contract, messages)."""
    messages = [
        {"role": "system", "content": "first"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "system", "content": "second"},
        {"role": "user", "content": "bye"},
    ]
    assert render_conversation(messages) == (
        "second",
        "user:\nhi\n\nassistant:\nhello\n\nuser:\nbye\n\n",
    )


def test_developer_counts_as_system() -> None:
    messages = [
        {"role": "system", "content": "old"},
        {"role": "developer", "content": "new"},
        {"role": "user", "content": "q"},
    ]
    assert render_conversation(messages) == ("new", "user:\nq\n\n")


def test_no_system_message() -> None:
    assert render_conversation([{"role": "user", "content": "q"}]) == (None, "user:\nq\n\n")
    assert render_conversation([]) == (None, "")


def test_absent_messages_give_no_fields() -> None:
    assert chat_message_fields({}) == {}
    assert chat_message_fields({"messages": openai.NOT_GIVEN}) == {}


def test_text_parts_are_joined_by_newlines() -> None:
    content = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}, "three"]
    assert render_content(content) == "one\ntwo\nthree"


def test_images_never_dump_base64() -> None:
    blob = base64.b64encode(b"\x89PNG" + bytes(3000)).decode()
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{blob}", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": "https://example.com/dog.png"},
    ]
    rendered = render_content(content)
    assert rendered == (
        "what is this?\n[image: data:image/png;base64,… (3004 bytes)]\n"
        "[image: https://example.com/cat.png]\n[image: https://example.com/dog.png]"
    )
    assert blob[:50] not in rendered


def test_audio_and_files() -> None:
    content = [
        {"type": "input_audio", "input_audio": {"data": "UklGRg" * 100, "format": "wav"}},
        {"type": "file", "file": {"filename": "report.pdf", "file_data": "JVBERi0" * 100}},
        {"type": "file", "file": {"file_id": "file-123"}},
        {"type": "file", "file": {}},
    ]
    assert render_content(content) == "[audio]\n[file: report.pdf]\n[file: file-123]\n[file]"


def test_unknown_parts_are_rendered_as_json_with_blobs_shortened() -> None:
    blob = "A" * 1000
    rendered = render_content([{"type": "hologram", "data": blob, "name": "é"}])
    assert rendered == '{"type": "hologram", "data": "… (1000 characters)", "name": "é"}'


def test_tool_calls_and_tool_results() -> None:
    messages = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "call_2", "type": "custom", "custom": {"name": "shell", "input": "ls"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 20}'},
        {"role": "function", "name": "legacy", "content": "ok"},
    ]
    assert render_conversation(messages)[1] == (
        "user:\nweather in Paris?\n\n"
        'assistant:\nget_weather({"city": "Paris"})\nshell(ls)\n\n'
        'tool (call_1):\n{"temp": 20}\n\n'
        "function (legacy):\nok\n\n"
    )


def test_legacy_function_call_and_refusal() -> None:
    messages = [
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
    ]
    assert render_conversation(messages)[1] == "assistant:\nf({})\n\nassistant:\nI can't help with that.\n\n"


def test_sdk_message_objects() -> None:
    reply = ChatCompletionMessage(
        role="assistant",
        content=None,
        tool_calls=[
            ChatCompletionMessageFunctionToolCall(
                id="call_9", type="function", function=Function(name="lookup", arguments='{"q": 1}')
            )
        ],
    )
    text = ChatCompletionMessage(role="assistant", content="plain")
    assert render_conversation([{"role": "user", "content": "q"}, reply, text])[1] == (
        'user:\nq\n\nassistant:\nlookup({"q": 1})\n\nassistant:\nplain\n\n'
    )


def test_objects_with_attributes_and_enum_roles() -> None:
    from enum import Enum
    from types import SimpleNamespace

    class Role(Enum):
        USER = "user"

    messages = [SimpleNamespace(role=Role.USER, content="hi"), SimpleNamespace(role="system", content="s")]
    assert render_conversation(messages) == ("s", "user:\nhi\n\n")


def test_unhashable_types_and_roles() -> None:
    messages = [{"role": ["user"], "content": [{"type": ["text"], "text": "t"}]}, {"type": {"a": 1}}]
    assert render_conversation(messages) == (None, "['user']:\nt\n\nitem:\n" + '{"type": {"a": 1}}\n\n')


def test_odd_shapes_never_crash() -> None:
    class Weird:
        @property
        def role(self) -> str:
            raise RuntimeError("boom")

        def __str__(self) -> str:
            return "weird"

    loop: dict[str, Any] = {"role": "user"}
    loop["content"] = [loop]
    messages: list[Any] = [
        None,
        3,
        "bare string",
        Weird(),
        {"role": 7, "content": {"x": 1}},
        loop,
        {"role": "assistant", "tool_calls": "not a list"},
        {"content": "no role"},
    ]
    system_msg, text = render_conversation(messages)
    assert system_msg is None
    assert "user:\nbare string\n\n" in text
    assert "7:\n" in text
    assert "weird" in text


# --- responses -----------------------------------------------------------------------------------


def test_responses_string_input() -> None:
    assert responses_message_fields({"instructions": "Be short.", "input": "Hi"}) == {
        "system_msg": "Be short.",
        "messages": "user:\nHi\n\n",
    }
    assert responses_message_fields({"input": "Hi", "instructions": openai.NOT_GIVEN}) == {
        "system_msg": None,
        "messages": "user:\nHi\n\n",
    }


def test_responses_absent() -> None:
    assert responses_message_fields({"model": "m"}) == {}


def test_responses_list_input_with_parts() -> None:
    params = {
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Describe"},
                    {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/AAAA", "detail": "auto"},
                    {"type": "input_image", "file_id": "file-1"},
                    {"type": "input_file", "filename": "a.pdf", "file_data": "..."},
                ],
            },
        ],
    }
    assert responses_message_fields(params)["messages"] == (
        "user:\nDescribe\n[image: data:image/jpeg;base64,… (6 bytes)]\n[image: file-1]\n[file: a.pdf]\n\n"
    )


def test_a_system_message_in_input_wins_over_instructions() -> None:
    params = {
        "instructions": "general",
        "input": [{"role": "developer", "content": "specific"}, {"role": "user", "content": "q"}],
    }
    assert responses_message_fields(params) == {
        "system_msg": "specific",
        "messages": "user:\nq\n\n",
    }


def test_responses_items_without_a_role() -> None:
    params = {
        "input": [
            {"role": "user", "content": "weather?"},
            ResponseReasoningItem(id="rs_1", type="reasoning", summary=[]),
            ResponseFunctionToolCall(
                type="function_call", call_id="call_1", name="get_weather", arguments='{"city":"Paris"}'
            ),
            {"type": "function_call_output", "call_id": "call_1", "output": "20C"},
            ResponseOutputMessage(
                id="msg_1",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text="It is 20C.", annotations=[])],
            ),
            {"type": "item_reference", "id": "msg_0"},
            {"type": "image_generation_call", "id": "ig_1", "result": "Q" * 5000},
        ]
    }
    text = responses_message_fields(params)["messages"]
    assert text.startswith(
        "user:\nweather?\n\n"
        "reasoning:\n[reasoning]\n\n"
        'function_call:\nget_weather({"city":"Paris"})\n\n'
        "function_call_output (call_1):\n20C\n\n"
        "assistant:\nIt is 20C.\n\n"
        "item_reference:\n[item: msg_0]\n\n"
        "image_generation_call:\n"
    )
    assert "Q" * 300 not in text


# --- properties ----------------------------------------------------------------------------------

message = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "function"]) | odd_text,
        "content": json_like,
        "tool_calls": json_like,
        "tool_call_id": json_like,
        "name": json_like,
        "type": st.sampled_from(["message", "function_call", "function_call_output"]) | json_like,
        "function_call": json_like,
        "output": json_like,
    },
)


part = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "input_image", "file", "input_file"]) | json_like},
    optional={"text": json_like, "image_url": json_like, "file": json_like, "filename": json_like},
)
message = message | st.fixed_dictionaries({"role": st.just("user"), "content": st.lists(part, max_size=4)})


@given(st.lists(message | json_like, max_size=6) | json_like, json_like)
def test_rendering_never_crashes(messages: Any, instructions: Any) -> None:
    system_msg, text = render_conversation(messages, instructions=instructions)
    assert system_msg is None or isinstance(system_msg, str)
    assert isinstance(text, str)
    assert chat_message_fields({"messages": messages}).keys() <= {"system_msg", "messages"}
    assert responses_message_fields({"input": messages, "instructions": instructions}).keys() <= {
        "system_msg",
        "messages",
    }


@given(st.lists(st.tuples(st.sampled_from(["user", "assistant"]), st.text(max_size=20)), max_size=5))
def test_plain_messages_render_in_the_seed_format(pairs: list[tuple[str, str]]) -> None:
    messages = [{"role": role, "content": content} for role, content in pairs]
    assert render_conversation(messages) == (None, "".join(f"{r}:\n{c}\n\n" for r, c in pairs))


@given(st.binary(max_size=2000))
def test_data_urls_report_their_decoded_size(data: bytes) -> None:
    url = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    assert render_content([{"type": "image_url", "image_url": {"url": url}}]) == (
        f"[image: data:application/octet-stream;base64,… ({len(data)} bytes)]"
    )


def test_json_dump_of_unknown_content_is_valid_json_when_possible() -> None:
    assert json.loads(render_content({"type": "x", "n": 1})) == {"type": "x", "n": 1}
