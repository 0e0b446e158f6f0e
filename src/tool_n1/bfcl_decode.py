"""Tool-N1 reply → BFCL checker input or a safe executable call string, with the reward's parser.

The parser is :func:`tool_n1.parsing.parse_response`. Shared by the BFCL evaluation (``eval/``) and the multi-turn RL
environment (:mod:`tool_n1_multiturn`), so that training executes exactly what the evaluation would.

No ``bfcl_eval`` import here, so the decoding rules can be tested and reused without the package.

* :func:`decode_ast`: ``[{name: arguments}, ...]`` as BFCL's AST checker expects; raises :class:`DecodeError` when
  the reply holds no usable call list (BFCL then scores "failed to decode": wrong on AST categories, right on
  irrelevance). ``<tool_call>[]</tool_call>`` decodes to ``[]`` ("no call").
* :func:`decode_execute`: ``["name(k=repr(v), ...)", ...]`` strings that BFCL's multi-turn executor passes to
  ``eval``. Safe by construction: ``name`` must be one of ``allowed`` (the methods of the entry's own API classes,
  :mod:`bfcl_executor_guard`), a plain identifier (no dot, no leading ``_``, no keyword, no builtin); argument
  names are identifiers; values are JSON values (finite numbers, depth at most :data:`MAX_DEPTH`, the written string
  at most :data:`MAX_CALL_CHARS` characters) written with ``repr``, and each written value must read back with
  ``ast.literal_eval`` as the same value; the final string is re-parsed and must be exactly
  ``Call(Name(allowed), keywords=literals)``. Anything else raises :class:`DecodeError` (not executable) instead of
  reaching ``eval``. :func:`check_execute_string` re-checks a finished string the same way (the executor guard
  runs it again on every string just before BFCL's ``eval``).

>>> reply = '<think>x</think><tool_call>[{"name": "math.gcd", "arguments": {"a": 4, "b": "6"}}]</tool_call>'
>>> decode_ast(reply)
[{'math.gcd': {'a': 4, 'b': '6'}}]
>>> decode_execute('<tool_call>[{"name": "ls", "arguments": {"a": "x\\')"}}]</tool_call>', allowed={"ls"})
['ls(a="x\\')")']
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import re
from collections.abc import Collection
from typing import Any

from tool_n1.parsing import BlockPolicy, parse_response

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
ARG_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Deepest nesting of lists / objects inside one argument value.
MAX_DEPTH = 16
#: Longest call string handed to the executor (a value beyond this is refused, not truncated).
MAX_CALL_CHARS = 100_000
_BUILTIN_NAMES = frozenset(dir(builtins))
_LITERAL_NODES = (ast.Constant, ast.List, ast.Tuple, ast.Dict, ast.UnaryOp, ast.USub, ast.UAdd, ast.Load)


class DecodeError(ValueError):
    """A reply that holds no usable (AST) or no safely executable (execute) call list."""


def parse_calls(result: Any, block: BlockPolicy = "first") -> list[dict[str, Any]]:
    """The reply's call list ``[{"name", "arguments"}, ...]`` (``result`` is the raw text BFCL stored)."""
    if not isinstance(result, str):
        raise DecodeError(f"expected the raw reply text, got {type(result).__name__}")
    parsed = parse_response(result, block=block)
    if parsed.calls is None:
        raise DecodeError(parsed.error)
    for call in parsed.calls:
        if not isinstance(call["name"], str) or not call["name"]:
            raise DecodeError(f"function name is not a non-empty string: {call['name']!r:.80}")
        if not isinstance(call["arguments"], dict):
            raise DecodeError(f"arguments of {call['name']!r:.80} are not an object")
    return parsed.calls


def decode_ast(result: Any, block: BlockPolicy = "first") -> list[dict[str, dict[str, Any]]]:
    """BFCL AST-checker input: one ``{name: arguments}`` dict per call, in order."""
    return [{call["name"]: call["arguments"]} for call in parse_calls(result, block)]


def check_name(name: Any, allowed: Collection[str]) -> None:
    """Raise :class:`DecodeError` unless ``name`` is a plain identifier in ``allowed`` (and no builtin)."""
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise DecodeError(f"function name {name!r:.80} is not a plain identifier")
    if keyword.iskeyword(name) or name in _BUILTIN_NAMES:
        raise DecodeError(f"function name {name!r:.80} is a Python keyword or builtin")
    if name not in allowed:
        raise DecodeError(f"function name {name!r:.80} is not a function of this entry's API classes")


def _check_value(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError("argument value nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise DecodeError("non-finite number in arguments")
    if isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise DecodeError("non-string object key in arguments")
            _check_value(item, depth + 1)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise DecodeError(f"argument value of type {type(value).__name__} is not JSON")


def _is_literal(node: ast.AST) -> bool:
    return all(isinstance(n, _LITERAL_NODES) for n in ast.walk(node))


def _literal_source(key: str, value: Any) -> str:
    _check_value(value)
    try:
        source = repr(value)
    except (ValueError, RecursionError) as exc:  # e.g. an int beyond the str-conversion digit limit
        raise DecodeError(f"argument {key!r} cannot be written: {str(exc)[:80]}") from None
    if len(source) > MAX_CALL_CHARS:
        raise DecodeError(f"argument {key!r} is longer than {MAX_CALL_CHARS} characters")
    try:
        same = ast.literal_eval(source) == value
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        same = False
    if not same:
        raise DecodeError(f"argument {key!r} does not read back as the same literal")
    return source


def check_execute_string(text: Any, allowed: Collection[str]) -> None:
    """Raise :class:`DecodeError` unless ``text`` is exactly ``name(literal, ..., kw=literal, ...)`` with ``name`` in
    ``allowed`` (positional literals only occur in BFCL's own ground truth; :func:`call_string` writes keywords)."""
    if not isinstance(text, str) or len(text) > MAX_CALL_CHARS:
        raise DecodeError("call string missing or too long")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise DecodeError("call string does not parse") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise DecodeError("call string is not a plain call of one name")
    check_name(call.func.id, allowed)
    if not all(_is_literal(arg) for arg in call.args):
        raise DecodeError("call string has a non-literal positional argument")
    for kw in call.keywords:
        if kw.arg is None or kw.arg.startswith("__") or not _is_literal(kw.value):
            raise DecodeError("call string has a non-literal or unpacked keyword argument")


def call_string(name: str, arguments: dict[str, Any], allowed: Collection[str]) -> str:
    """``name(k=repr(v), ...)`` after the safety checks of the module docstring."""
    check_name(name, allowed)
    parts = []
    for key, value in arguments.items():
        if not isinstance(key, str) or not ARG_PATTERN.fullmatch(key) or keyword.iskeyword(key):
            raise DecodeError(f"argument name {key!r:.80} is not an identifier")
        if key.startswith("__"):
            raise DecodeError(f"argument name {key!r:.80} is a dunder")
        parts.append(f"{key}={_literal_source(key, value)}")
    text = f"{name}({', '.join(parts)})"
    check_execute_string(text, allowed)
    return text


def decode_execute(result: Any, block: BlockPolicy = "first", allowed: Collection[str] = frozenset()) -> list[str]:
    """BFCL execute-checker input: one safe call string per call (all or nothing); ``allowed``: callable names."""
    return [call_string(call["name"], call["arguments"], allowed) for call in parse_calls(result, block)]
