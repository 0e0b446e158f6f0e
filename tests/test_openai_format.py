"""tool_n1.openai_format: a Tool-N1 reply as reasoning, content and OpenAI tool_calls (what the vLLM plugin serves)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tool_n1.openai_format import openai_tool_calls, split_reply, stable_prefix

CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


def test_tool_n1_list_qwen_blocks_and_calls_inside_reasoning():
    reply = split_reply(f"<think>I need the weather.</think> <tool_call>{json.dumps([CALL, CALL])}</tool_call>")
    assert (reply.reasoning, reply.content, reply.calls, reply.error) == ("I need the weather.", "", [CALL, CALL], "")
    qwen = split_reply(f"<tool_call>{json.dumps(CALL)}</tool_call>\n<tool_call>{json.dumps(CALL)}</tool_call>")
    assert qwen.calls == [CALL, CALL] and qwen.reasoning is None
    considered = split_reply(f"<think>maybe <tool_call>{json.dumps([CALL])}</tool_call>?</think>No call needed.")
    assert considered.calls == [] and considered.content == "No call needed."
    assert "<tool_call>" in considered.reasoning


def test_a_block_that_is_not_a_call_list_stays_in_the_content():
    for block in ("[1,", "5", '"x"', "[1, 2]", "[" * 5000 + "]" * 5000):
        reply = split_reply(f"<think>t</think>text <tool_call>{block}</tool_call>")
        assert reply.calls == [] and reply.error and reply.content == f"text <tool_call>{block}</tool_call>"


def test_openai_tool_calls_send_arguments_as_json_strings():
    assert openai_tool_calls([CALL, {"name": "f", "arguments": '{"a": 1}'}]) == [
        {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
    ]


REPLY_PIECES = st.sampled_from(
    [
        "<think>",
        "</think>",
        "<tool_call>",
        "</tool_call>",
        json.dumps([CALL]),
        json.dumps(CALL),
        "text ",
        "<",
        "/",
        "[",
    ]
)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(REPLY_PIECES, max_size=12), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_streaming_the_stable_prefix_only_ever_appends(pieces, cuts):
    # What a streaming server sends is split_reply of successive stable prefixes: it must never take back a call
    # or a character of content, and at the end it must equal the split of the whole reply.
    text = "".join(pieces)
    points = sorted({min(c, len(text)) for c in cuts} | {len(text)})
    sent_calls, sent_content = [], ""
    for point in points:
        reply = split_reply(stable_prefix(text[:point]), strip=False)
        assert reply.calls[: len(sent_calls)] == sent_calls
        assert reply.content.startswith(sent_content)
        sent_calls, sent_content = reply.calls, reply.content
    final = split_reply(text, strip=False)
    assert final.calls[: len(sent_calls)] == sent_calls


def test_stable_prefix_holds_back_partial_tags_and_open_calls():
    assert stable_prefix("hello <too") == "hello "
    assert stable_prefix("a <tool_call>[{") == "a "
    assert stable_prefix("<think>still thinking <tool_call>") == "<think>still thinking <tool_call>"
    assert stable_prefix("done</think>") == "done</think>"
