"""Tool-N1 reply → BFCL checker input, with the reward's parser (:func:`tool_n1.parsing.parse_response`).

No ``bfcl_eval`` import here, so the decoding rules can be tested and reused without the package.

* :func:`decode_ast`: ``[{name: arguments}, ...]`` as BFCL's AST checker expects; raises :class:`DecodeError` when
  the reply holds no usable call list (BFCL then scores "failed to decode": wrong on AST categories, right on
  irrelevance). ``<tool_call>[]</tool_call>`` decodes to ``[]`` ("no call").
* :func:`decode_execute`: ``["name(k=repr(v), ...)", ...]`` strings that BFCL's multi-turn executor passes to
  ``eval``. They are built so that evaluating one can only call the named function with literal keyword arguments:
  names match :data:`NAME_PATTERN` (dotted identifiers, no segment starting with ``_``, no keyword), the first
  segment is neither a builtin nor a global of the module in which BFCL evaluates the string; argument names are
  identifiers; values are JSON values (finite numbers, bounded depth) written with ``repr``; and the final string is
  re-parsed and must be exactly ``Call(dotted name, keywords=literals)``. Anything else raises
  :class:`DecodeError` (not executable) instead of reaching ``eval``.

>>> reply = '<think>x</think><tool_call>[{"name": "math.gcd", "arguments": {"a": 4, "b": "6"}}]</tool_call>'
>>> decode_ast(reply)
[{'math.gcd': {'a': 4, 'b': '6'}}]
>>> decode_execute('<tool_call>[{"name": "ls", "arguments": {"a": "x\\')"}}]</tool_call>')
['ls(a="x\\')")']
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import re
from typing import Any

from tool_n1.parsing import BlockPolicy, parse_response

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
ARG_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_DEPTH = 32
#: Globals of ``bfcl_eval.eval_checker.multi_turn_eval.multi_turn_utils`` (where BFCL calls ``eval``), as of
#: bfcl-eval 2026.3.23; :func:`_eval_namespace` adds the live module's names when it can be imported.
_KNOWN_EVAL_GLOBALS = frozenset({"copy", "importlib", "inspect", "json", "re", "CLASS_FILE_PATH_MAPPING"})
_LITERAL_NODES = (ast.Constant, ast.List, ast.Dict, ast.Tuple, ast.UnaryOp, ast.USub, ast.Load)
_namespace_cache: frozenset[str] | None = None


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


def _eval_namespace() -> frozenset[str]:
    global _namespace_cache
    if _namespace_cache is None:
        names = set(dir(builtins)) | _KNOWN_EVAL_GLOBALS
        try:  # the real module, where available (it only needs bfcl_eval importable)
            from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils

            names |= set(vars(multi_turn_utils))
        except Exception:  # noqa: BLE001 - any import problem: keep the static list
            pass
        _namespace_cache = frozenset(names)
    return _namespace_cache


def check_name(name: str) -> None:
    """Raise :class:`DecodeError` unless ``name`` is a safe dotted identifier (see the module docstring)."""
    if not NAME_PATTERN.fullmatch(name):
        raise DecodeError(f"function name {name!r:.80} is not a dotted identifier")
    segments = name.split(".")
    if any(keyword.iskeyword(s) for s in segments):
        raise DecodeError(f"function name {name!r:.80} contains a Python keyword")
    if segments[0] in _eval_namespace():
        raise DecodeError(f"function name {name!r:.80} refers to a builtin or an evaluator global")


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


def _is_dotted(node: ast.AST) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def call_string(name: str, arguments: dict[str, Any]) -> str:
    """``name(k=repr(v), ...)`` after the safety checks of the module docstring."""
    check_name(name)
    parts = []
    for key, value in arguments.items():
        if not isinstance(key, str) or not ARG_PATTERN.fullmatch(key) or keyword.iskeyword(key):
            raise DecodeError(f"argument name {key!r:.80} is not an identifier")
        _check_value(value)
        try:
            parts.append(f"{key}={value!r}")
        except (ValueError, RecursionError) as exc:  # e.g. an int beyond the str-conversion digit limit
            raise DecodeError(f"argument {key!r} cannot be written: {str(exc)[:80]}") from None
    text = f"{name}({', '.join(parts)})"
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise DecodeError("call string does not parse") from None
    call = tree.body
    if not (
        isinstance(call, ast.Call)
        and not call.args
        and _is_dotted(call.func)
        and all(kw.arg is not None and _is_literal(kw.value) for kw in call.keywords)
    ):
        raise DecodeError("call string is not a plain call with literal keyword arguments")
    return text


def decode_execute(result: Any, block: BlockPolicy = "first") -> list[str]:
    """BFCL execute-checker input: one safe call string per call (all or nothing)."""
    return [call_string(call["name"], call["arguments"]) for call in parse_calls(result, block)]
