"""BFCL v4 format sensitivity with our handler: BFCL's prompt for the entry, BFCL's decoders, nothing executed.

bfcl-eval's ``format_sensitivity`` category repeats 200 single-turn entries under 26 system-prompt configurations
(``ret_fmt`` python / json / verbose_xml / concise_xml, ``tool_call_tag`` True / False, ``func_doc_fmt``,
``prompt_fmt``, ``style``), written into the entry id ``format_sensitivity_<n>:<config>:<original id>``. For those
entries :mod:`bfcl_handler` sends BFCL's own system prompt (``system_prompt_pre_processing_chat_model``) and this
module decodes the reply in the requested return format with bfcl-eval's own ``default_decode_ast_prompting``, after
:func:`check_python_source` has refused any Python return whose syntax tree holds a node that bfcl-eval's Python
resolver would hand to ``eval`` (a binary operation, a lambda) or cannot resolve: only calls, names, attributes,
literals, containers, subscripts and unary signs pass. Replies longer than :data:`MAX_REPLY_CHARS` are refused
before any regex runs. The decoded list is checked to be ``[{name: {str: value}}]`` before BFCL's checker sees it.

:func:`install` wraps bfcl-eval's ``format_sensitivity_runner`` so that the handler knows when it decodes for that
category (its Python return without tag looks exactly like an ordinary Python entry's call).

Importing this module imports ``bfcl_eval``: set ``BFCL_PROJECT_ROOT`` first (``run_bfcl.py`` does).
"""

from __future__ import annotations

import ast
import re
import threading
from typing import Any

from bfcl_eval.constants.enums import ReturnFormat
from bfcl_eval.eval_checker import eval_runner
from bfcl_eval.model_handler.utils import default_decode_ast_prompting

from tool_n1.bfcl_decode import DecodeError

#: Longest reply handed to bfcl-eval's decoders (their regexes are not linear on hostile text).
MAX_REPLY_CHARS = 100_000
_PYTHON_NODES = (
    ast.Expression,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Call,
    ast.keyword,
    ast.Name,
    ast.Attribute,
    ast.Constant,
    ast.UnaryOp,
    ast.USub,
    ast.UAdd,
    ast.Subscript,
    ast.Slice,
    ast.Load,
)
_TOOLCALL = re.compile(r"<TOOLCALL>(.*?)</TOOLCALL>", re.DOTALL)
_context = threading.local()
_original_runner = eval_runner.format_sensitivity_runner


def active() -> bool:
    """Whether the calling thread is scoring the format-sensitivity category."""
    return getattr(_context, "active", False)


def _python_source(result: str, has_tool_call_tag: bool) -> str:
    """The exact text bfcl-eval's ``default_decode_ast_prompting`` hands to ``ast.parse`` for a Python return."""
    text = result.strip("`\n ")
    text = text if text.startswith("[") else "[" + text
    text = text if text.endswith("]") else text + "]"
    if has_tool_call_tag:
        match = _TOOLCALL.search(text)
        if not match:
            raise DecodeError("no <TOOLCALL> section")
        text = match.group(1).strip()
    return text.strip().strip("'")


def check_python_source(result: str, has_tool_call_tag: bool) -> None:
    """Raise :class:`DecodeError` unless the Python return is calls of literal values (nothing bfcl would eval)."""
    try:
        tree = ast.parse(_python_source(result, has_tool_call_tag), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise DecodeError("the Python return does not parse") from None
    for node in ast.walk(tree):
        if not isinstance(node, _PYTHON_NODES):
            raise DecodeError(f"the Python return holds a {type(node).__name__} (not a literal call; never evaluated)")


def _check_decoded(decoded: Any) -> list[dict[str, dict[str, Any]]]:
    if not isinstance(decoded, list):
        raise DecodeError("the decoded return is not a list of calls")
    for call in decoded:
        if not (isinstance(call, dict) and len(call) == 1):
            raise DecodeError("a decoded call is not {name: arguments}")
        ((name, arguments),) = call.items()
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise DecodeError("a decoded call has no string name or no argument object")
        if not all(isinstance(key, str) for key in arguments):
            raise DecodeError("a decoded call has a non-string argument name")
    return decoded


def decode(result: Any, return_format: ReturnFormat | str, has_tool_call_tag: bool) -> list[dict[str, Any]]:
    """A format-sensitivity reply → BFCL checker input, with bfcl-eval's decoder for ``return_format``."""
    if not isinstance(result, str):
        raise DecodeError(f"expected the raw reply text, got {type(result).__name__}")
    if len(result) > MAX_REPLY_CHARS:
        raise DecodeError(f"reply longer than {MAX_REPLY_CHARS} characters")
    return_format = ReturnFormat(return_format)
    if return_format not in (
        ReturnFormat.PYTHON,
        ReturnFormat.JSON,
        ReturnFormat.VERBOSE_XML,
        ReturnFormat.CONCISE_XML,
    ):
        raise DecodeError(f"return format {return_format.value} is not one of format sensitivity's")
    if return_format is ReturnFormat.PYTHON:
        check_python_source(result, has_tool_call_tag)
    try:
        decoded = default_decode_ast_prompting(result, return_format, has_tool_call_tag)
    except Exception as exc:  # bfcl's decoders raise many kinds on bad text
        raise DecodeError(f"bfcl-eval's {return_format.value} decoder: {str(exc)[:200]}") from None
    return _check_decoded(decoded)


def scoring_runner(*args, **kwargs):
    """bfcl-eval's ``format_sensitivity_runner``, with :func:`active` true while it runs."""
    _context.active = True
    try:
        return _original_runner(*args, **kwargs)
    finally:
        _context.active = False


def install() -> None:
    """Route bfcl-eval's format-sensitivity scoring through :func:`scoring_runner` (idempotent)."""
    eval_runner.format_sensitivity_runner = scoring_runner
