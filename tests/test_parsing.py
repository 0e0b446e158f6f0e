"""Block extraction and tool-call decoding: regex-equivalent results in linear time, never an exception."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tool_n1.parsing import (
    QWEN_ASSISTANT_MARKER,
    cut_at_last_marker,
    decode_tool_calls,
    find_blocks,
    load_json,
    parse_response,
)

TAGS = ["<tool_call>", "</tool_call>", "<think>", "</think>"]
TAGGY = st.lists(st.sampled_from(list("ab \n<>/") + TAGS)).map("".join)


@settings(max_examples=1000)
@given(TAGGY)
def test_find_blocks_equals_the_original_regex(text):
    expected = [m.span(1) for m in re.finditer(r"<tool_call>(.*?)</tool_call>", text, flags=re.DOTALL)]
    assert find_blocks(text, "tool_call") == expected


def test_find_blocks_on_many_unclosed_tags_returns_nothing():
    assert find_blocks("<tool_call>x" * 10_000, "tool_call") == []
    assert find_blocks("<tool_call>a</tool_call>" + "<tool_call>" * 10_000, "tool_call") == [(11, 12)]


def test_cut_at_last_marker():
    assert cut_at_last_marker("sys<|im_start|>assistant\nA<|im_start|>assistant\nB") == QWEN_ASSISTANT_MARKER + "\nB"
    assert cut_at_last_marker("no marker") == "no marker"


def test_decode_post_processing_of_the_original():
    assert decode_tool_calls(' {"name": "f", "arguments": {}} ') == ([{"name": "f", "arguments": {}}], "")
    assert decode_tool_calls('"[{\\"name\\": \\"f\\", \\"arguments\\": {}}]"')[0] == [{"name": "f", "arguments": {}}]
    assert decode_tool_calls('"not json"') == (None, "JSON string inside <tool_call> is not JSON itself")
    assert decode_tool_calls("5") == (5, "")


def test_load_json_never_raises_on_what_the_original_crashed_on():
    assert load_json("[" * 5000 + "]" * 5000) == (None, "JSON nested too deeply")
    value, error = load_json("1" * 5000)
    assert value is None and error.startswith("invalid JSON value")
    assert load_json("{'a': 1}")[1].startswith("invalid JSON in <tool_call>")


def test_parse_response_block_policies():
    text = (
        '<think>t</think><tool_call>[{"name": "a", "arguments": {}}]</tool_call>'
        '<tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call>'
    )
    assert [c["name"] for c in parse_response(text, block="first").calls] == ["a"]
    assert [c["name"] for c in parse_response(text, block="last").calls] == ["b"]
    assert [c["name"] for c in parse_response(text, block="all").calls] == ["a", "b"]
    parsed = parse_response(text)
    assert parsed.think == "t" and parsed.num_blocks == 2 and parsed.error == ""


def test_parse_response_reports_why_there_are_no_calls():
    assert parse_response("just text").error == "no <tool_call> block"
    assert parse_response("<tool_call>5</tool_call>").error == "tool call is not a list of {name, arguments}"
    assert parse_response('<tool_call>[{"name": "f"}]</tool_call>').calls is None
    assert parse_response("<tool_call>[]</tool_call>").calls == []
