"""ToolACE's bracketed call strings, e.g. ``[Weather API(city="Oslo"), news_feed()]``, → tool-call dicts.

Two parsers:

* ``mode="faithful"`` reproduces the original ground-truth normalisation exactly, defects included: a call ends at
  its first ``)`` (``h=(1, 2)`` becomes the string ``"(1, 2"``), JSON literals stay strings (``flag=true`` →
  ``"true"``), positional arguments are dropped, a name keeps only what follows its last ``/``. It runs in linear
  time, where the original's regexes are quadratic (parser) and exponential (validator) on degenerate strings.
* ``mode="robust"`` parses nested brackets, quotes with escapes, Python and JSON literals, and rejects what it
  cannot parse with a reason (:class:`CallStringError`).

>>> parse_call_string('[f(flag=true, h=(1, 2), n=3)]', mode="faithful")
[{'name': 'f', 'arguments': {'flag': 'true', 'h': '(1, 2'}}]
>>> parse_call_string('[f(flag=true, h=(1, 2), n=3)]', mode="robust")
[{'name': 'f', 'arguments': {'flag': True, 'h': [1, 2], 'n': 3}}]
"""

from __future__ import annotations

import ast
import json
import re
import string
from typing import Any, Literal

_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "._?|-")
_NAME_RUN = re.compile(r"[a-zA-Z0-9._?|\s\-]+")
_PLAIN_RUN = re.compile(r"[^'\"()\[\]{},\\]+")
_CLOSER = {"(": ")", "[": "]", "{": "}"}
_SIMPLE_INT = re.compile(r"-?[1-9][0-9]{0,17}|0")
_SIMPLE_STRING = re.compile(r"\"[^\"\\]*\"|'[^'\\]*'")


class CallStringError(ValueError):
    """A call string the robust parser cannot read; the message says where and why."""


def parse_call_string(
    text: str, mode: Literal["faithful", "robust"] = "robust", tool_names: Any = ()
) -> list[dict[str, Any]]:
    """Parse a ToolACE call string into ``[{"name", "arguments"}, ...]``.

    Faithful mode never raises and returns ``[]`` where the original found nothing (use
    :func:`is_valid_call_string` for its acceptance test); robust mode raises :class:`CallStringError`. In robust
    mode a call's name is first matched against ``tool_names`` (the longest name followed by ``(`` wins), so names
    with parentheses such as ``Weather Lookup (Pro)`` are read whole.

    >>> parse_call_string('[Lookup (Pro)(city="Oslo")]', tool_names=["Lookup (Pro)"])
    [{'name': 'Lookup (Pro)', 'arguments': {'city': 'Oslo'}}]
    """
    if mode == "faithful":
        return [{"name": name, "arguments": _faithful_params(params)} for name, params in _faithful_calls(text)]
    if mode == "robust":
        return _RobustParser(text, tool_names).parse()
    raise ValueError(f"unknown call-string mode {mode!r}; valid: 'faithful', 'robust'")


# --------------------------------------------------------------------------- faithful


def _is_name_char(ch: str, allow_slash: bool = False) -> bool:
    return ch in _NAME_CHARS or ch.isspace() or (allow_slash and ch == "/")


def _faithful_calls(text: str) -> list[tuple[str, str]]:
    """``re.findall(r'([a-zA-Z0-9._?|\\s-]+)\\((.*?)\\)', text)`` with names stripped, in linear time.

    A run of name characters matches only if the character after the whole run is ``(``; the arguments run to the
    first ``)`` and may not contain a newline (``.`` without DOTALL). Next ``)`` / newline positions are cached so a
    long string of unclosed calls stays linear.
    """
    calls = []
    next_close = next_newline = -2
    pos = 0
    while True:
        run = _NAME_RUN.search(text, pos)
        if run is None:
            break
        start, end = run.span()
        if end < len(text) and text[end] == "(":
            if next_close < end:
                next_close = text.find(")", end + 1)
                next_close = len(text) if next_close == -1 else next_close
            if next_newline < end:
                next_newline = text.find("\n", end + 1)
                next_newline = len(text) if next_newline == -1 else next_newline
            if next_close < len(text) and next_close < next_newline:
                calls.append((text[start:end].strip(), text[end + 1 : next_close]))
                pos = next_close + 1
                continue
        pos = end + 1
    return calls


def _split_top_level(params: str) -> list[str]:
    """Split at commas outside quotes and brackets (no escape handling, like the original)."""
    items, current = [], []
    depth = 0
    quote = None
    for ch in params:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if current:
        items.append("".join(current).strip())
    return items


def _faithful_params(params: str) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for item in _split_top_level(params):
        if "=" not in item:
            continue  # positional arguments are silently dropped
        key, value = item.split("=", 1)
        value = value.strip()
        try:
            arguments[key.strip()] = ast.literal_eval(value)
        except Exception:  # literal_eval raises many types (and RecursionError/MemoryError on deep nesting)
            arguments[key.strip()] = value.strip("'\"")
    return arguments


def is_valid_call_string(text: Any) -> bool:
    """The original acceptance test for a call turn, in linear time.

    Equivalent to ``re.match(r'^\\[\\s*(N+\\(.*?\\)\\s*)(,\\s*N+\\(.*?\\)\\s*)*\\]$', text.strip())``
    with ``N`` the name characters plus ``/``; that regex backtracks exponentially (18 calls and a trailing comma
    take 31 s). Here the same language is recognised by a four-state automaton.
    """
    if not text or not isinstance(text, str):
        return False
    body = text.strip()
    if len(body) < 2 or body[0] != "[" or body[-1] != "]":
        return False
    # states: 0 expect name, 1 in name, 2 in arguments, 3 after a closing ")" (possibly inside arguments too)
    states = {0}
    for ch in body[1:-1]:
        new = set()
        name_char = _is_name_char(ch, allow_slash=True)
        for state in states:
            if state in (0, 1) and name_char:
                new.add(1)
            if state == 1 and ch == "(":
                new.add(2)
            if state == 2 and ch != "\n":
                new.add(2)
                if ch == ")":
                    new.add(3)
            if state == 3:
                if ch.isspace():
                    new.add(3)
                elif ch == ",":
                    new.add(0)
        if not new:
            return False
        states = new
    return 3 in states


# --------------------------------------------------------------------------- robust


class _RobustParser:
    """Recursive-descent reader of ``[name(key=literal, ...), ...]``; values via ``ast.literal_eval``."""

    def __init__(self, text: str, tool_names: Any = ()):
        if not isinstance(text, str):
            raise CallStringError(f"call string is a {type(text).__name__}, not a string")
        self.text = text.strip()
        self.pos = 0
        self.names = sorted((n for n in tool_names if "(" in n), key=len, reverse=True)  # the others need no help

    def fail(self, reason: str) -> CallStringError:
        snippet = self.text[max(0, self.pos - 15) : self.pos + 15]
        return CallStringError(f"{reason} at char {self.pos} (near {snippet!r})")

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expect(self, ch: str) -> None:
        self.skip_spaces()
        if self.pos >= len(self.text) or self.text[self.pos] != ch:
            raise self.fail(f"expected {ch!r}")
        self.pos += 1

    def parse(self) -> list[dict[str, Any]]:
        self.expect("[")
        calls = []
        self.skip_spaces()
        if self.text.startswith("]", self.pos):
            self.pos += 1
        else:
            while True:
                calls.append(self.call())
                self.skip_spaces()
                if self.text.startswith(",", self.pos):
                    self.pos += 1
                    continue
                self.expect("]")
                break
        self.skip_spaces()
        if self.pos != len(self.text):
            raise self.fail("trailing text after ']'")
        return calls

    def call(self) -> dict[str, Any]:
        self.skip_spaces()
        start = self.pos
        paren, known = self.text.find("(", start), None
        for known in self.names:
            after = len(self.text) - len(self.text[start + len(known) :].lstrip())
            if self.text.startswith(known, start) and self.text.startswith("(", after):
                paren = after
                break
        else:
            known = None
        if paren == -1:
            raise self.fail("call without '('")
        name = self.text[start:paren].strip()
        if not name or (name != known and any(c in name for c in "\"'[]{}=,)")):
            raise self.fail(f"invalid function name {name!r}")
        self.pos = paren + 1
        arguments: dict[str, Any] = {}
        self.skip_spaces()
        if self.text.startswith(")", self.pos):
            self.pos += 1
            return {"name": name, "arguments": arguments}
        while True:
            key = self.key()
            if key in arguments:
                raise self.fail(f"argument {key!r} given twice")
            arguments[key] = self.value()
            self.skip_spaces()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            self.expect(")")
            return {"name": name, "arguments": arguments}

    def key(self) -> str:
        self.skip_spaces()
        start = self.pos
        while self.pos < len(self.text) and (self.text[self.pos].isalnum() or self.text[self.pos] in "_-."):
            self.pos += 1
        key = self.text[start : self.pos]
        self.skip_spaces()
        if not key or not self.text.startswith("=", self.pos):
            raise self.fail("positional or malformed argument (expected name=value)")
        self.pos += 1
        return key

    def value(self) -> Any:
        """Scan to the next top-level ``,`` or ``)`` (quotes with escapes, nested brackets), then evaluate."""
        self.skip_spaces()
        start = self.pos
        closers = []
        quote = None
        text = self.text
        while self.pos < len(text):
            plain = _PLAIN_RUN.match(text, self.pos)  # skip ordinary characters in one step
            if plain:
                self.pos = plain.end()
                if self.pos >= len(text):
                    break
            ch = text[self.pos]
            if quote:
                if ch == "\\":
                    self.pos += 1
                elif ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch in "([{":
                closers.append(_CLOSER[ch])
            elif ch in ")]}":
                if not closers:
                    break
                if closers.pop() != ch:
                    raise self.fail(f"unbalanced {ch!r}")
            elif ch == "," and not closers:
                break
            self.pos += 1
        if quote or closers:
            raise self.fail("unterminated string or bracket")
        return self.literal(text[start : self.pos].strip())

    def literal(self, source: str) -> Any:
        if not source:
            raise self.fail("empty value")
        if _SIMPLE_INT.fullmatch(source):
            return int(source)
        if _SIMPLE_STRING.fullmatch(source):
            return source[1:-1]
        try:
            value = ast.literal_eval(source)
        except Exception:
            try:
                value = json.loads(source)  # JSON literals: true, null, [true, 1], {"a": false}
            except Exception:
                raise self.fail(f"value {source[:40]!r} is neither a Python nor a JSON literal") from None
        try:
            return _to_json_value(value)
        except TypeError as exc:
            raise self.fail(str(exc)) from None


def _to_json_value(value: Any) -> Any:
    """Python literal → JSON-compatible value (tuples and sets become lists); ``TypeError`` for the rest."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_json_value(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_to_json_value(v) for v in value), key=repr)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("dict value with non-string keys")
        return {k: _to_json_value(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} value is not JSON-compatible")
