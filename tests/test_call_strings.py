"""ToolACE call strings: the original's table (faithful), a correct parser (robust), regex equivalence."""

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tool_n1.call_strings import CallStringError, is_valid_call_string, parse_call_string

# (input, valid, faithful parse) — observed outputs of the original ToolACE parser and validator.
ORIGINAL_TABLE = [
    ('[get_weather(city="Paris", unit="c")]', True, [("get_weather", {"city": "Paris", "unit": "c"})]),
    ('[Weather API(city="Oslo"), news_feed()]', True, [("Weather API", {"city": "Oslo"}), ("news_feed", {})]),
    (
        '[f(a=1, b=2.0, c=True, d=None, e=[1, 2], g={"k": "v"}, h=(1, 2))]',
        True,
        [("f", {"a": 1, "b": 2.0, "c": True, "d": None, "e": [1, 2], "g": {"k": "v"}, "h": "(1, 2"})],
    ),
    ("[f(flag=true, n=null)]", True, [("f", {"flag": "true", "n": "null"})]),
    ('[f(q="foo (bar)", n=1)]', True, [("f", {"q": "foo (bar"})]),
    ('[f(q="a, b", n=1)]', True, [("f", {"q": "a, b", "n": 1})]),
    ("[f(x=abc)]", True, [("f", {"x": "abc"})]),
    ("[f(x=-5, y=1e3)]", True, [("f", {"x": -5, "y": 1000.0})]),
    ("[f(1, 2)]", True, [("f", {})]),
    ("[ns.sub/func(a=1)]", True, [("func", {"a": 1})]),
]


@pytest.mark.parametrize("text,valid,expected", ORIGINAL_TABLE)
def test_faithful_parser_reproduces_the_original_table(text, valid, expected):
    assert is_valid_call_string(text) is valid
    got = parse_call_string(text, mode="faithful")
    assert [(c["name"], c["arguments"]) for c in got] == expected
    # types too (True vs 1, 2.0 vs 2): compare canonical JSON
    assert json.dumps([c["arguments"] for c in got]) == json.dumps([a for _, a in expected])


ROBUST_TABLE = [
    ("[f(h=(1, 2), flag=true, n=null)]", [("f", {"h": [1, 2], "flag": True, "n": None})]),
    ('[f(q="foo (bar)", n=1)]', [("f", {"q": "foo (bar)", "n": 1})]),
    ("[f(q='it\\'s, ok', xs=[true, false])]", [("f", {"q": "it's, ok", "xs": [True, False]})]),
    ('[Get Manager Placeholder Image(sport="football")]', [("Get Manager Placeholder Image", {"sport": "football"})]),
    ("[GetCompetitions()]", [("GetCompetitions", {})]),
    ("[ns.sub/func(a=1)]", [("ns.sub/func", {"a": 1})]),
    ("[]", []),
    ('[f(d={"a": [1, {"b": "x)"}]})]', [("f", {"d": {"a": [1, {"b": "x)"}]}})]),
]


@pytest.mark.parametrize("text,expected", ROBUST_TABLE)
def test_robust_parser(text, expected):
    assert [(c["name"], c["arguments"]) for c in parse_call_string(text)] == expected


@pytest.mark.parametrize(
    "text,reason",
    [
        ("[f(x=abc)]", "neither a Python nor a JSON literal"),
        ("[f(1, 2)]", "positional"),
        ('[f(q="unterminated)]', "unterminated"),
        ("f(a=1)", "expected '['"),
        ("[f(a=1)] trailing", "trailing text"),
        ("[f(a=1, a=2)]", "given twice"),
        ("[f(a=(1]))]", "unbalanced"),
        ("[f(a={1: 2})]", "non-string keys"),
        ("[f(a=b'x')]", "not JSON-compatible"),
    ],
)
def test_robust_parser_rejects_with_a_reason(text, reason):
    with pytest.raises(CallStringError, match=re.escape(reason)):
        parse_call_string(text)


def test_unknown_mode_is_a_configuration_error():
    with pytest.raises(ValueError, match="faithful"):
        parse_call_string("[f()]", mode="strict")


# The original's two regexes, as oracles on short strings (on long ones they are quadratic / exponential).
ORIGINAL_CALL = re.compile(r"([a-zA-Z0-9\._\?\|\s\-]+)\((.*?)\)")
ORIGINAL_VALID = re.compile(r"^\[\s*([a-zA-Z0-9\._\?\|\s\-/]+\(.*?\)\s*)(,\s*[a-zA-Z0-9\._\?\|\s\-/]+\(.*?\)\s*)*\]$")
CALLISH = st.lists(st.sampled_from(list("ab_ /.()[],=\"'\n1") + ["x=1", "f(", ")"]), max_size=30).map("".join)


@settings(max_examples=2000)
@given(CALLISH)
def test_faithful_parser_matches_the_original_regex(text):
    expected = [name.strip() for name, _ in ORIGINAL_CALL.findall(text)]
    assert [c["name"] for c in parse_call_string(text, mode="faithful")] == expected


@settings(max_examples=2000)
@given(CALLISH)
def test_validator_matches_the_original_regex(text):
    assert is_valid_call_string(text) == bool(ORIGINAL_VALID.match(text.strip()))


def test_degenerate_strings_do_not_backtrack():
    # 18 calls and a trailing comma took the original validator 31 s; the unclosed run is quadratic there.
    assert is_valid_call_string("[" + "f(a=1), " * 18 + ",]") is False
    assert is_valid_call_string("[" + "f(a=1), " * 10_000 + "f()]") is True
    assert parse_call_string("a(" * 50_000, mode="faithful") == []
    assert len(parse_call_string("[" + "f(a=1), " * 10_000 + "]", mode="faithful")) == 10_000


def test_robust_names_with_parentheses_resolve_against_the_tool_names_longest_first():
    names = ["Weather Lookup", "Weather Lookup (Pro)", "news"]
    text = '[Weather Lookup (Pro)(city="Oslo", days=3), Weather Lookup(city="a (b)"), news()]'
    assert [call["name"] for call in parse_call_string(text, tool_names=names)] == [names[1], names[0], names[2]]
    assert parse_call_string(text, tool_names=names)[1]["arguments"] == {"city": "a (b)"}
    with pytest.raises(CallStringError, match="positional or malformed"):
        parse_call_string('[Weather Lookup (Pro)(city="Oslo")]')  # without the names: "(Pro)" looks like arguments
