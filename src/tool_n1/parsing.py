"""Reading a model response: ``<think>`` / ``<tool_call>`` blocks and the tool-call JSON inside them.

The same functions serve the training reward (:mod:`tool_n1.reward`, last block) and the evaluators (first block,
as the original BFCL handler), so a response is read the same way in training and evaluation.

>>> parse_response('<think>easy</think><tool_call>[{"name": "f", "arguments": {"x": 1}}]</tool_call>').calls
[{'name': 'f', 'arguments': {'x': 1}}]
>>> parse_response("<tool_call>[1,</tool_call>").error
'invalid JSON in <tool_call>: Expecting value (char 3)'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

QWEN_ASSISTANT_MARKER = "<|im_start|>assistant"
LLAMA_ASSISTANT_MARKER = "<|start_header_id|>assistant<|end_header_id|>"
END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>")

BlockPolicy = Literal["first", "last", "all"]


def cut_at_last_marker(text: str, marker: str = QWEN_ASSISTANT_MARKER) -> str:
    """Keep the text from the last ``marker`` on (the whole text when absent).

    The original reward received prompt + response decoded together and cut them this way; on a response alone
    (current verl) it is a no-op.
    """
    index = text.rfind(marker)
    return text[index:] if index != -1 else text


def find_blocks(text: str, tag: str, limit: int | None = None) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the contents of non-overlapping ``<tag>…</tag>`` blocks, left to right.

    Same matches as ``re.finditer(f"<{tag}>(.*?)</{tag}>", text, re.DOTALL)``, in linear time: that regex rescans to
    the end of the text for every unclosed opening tag (quadratic on a degenerate rollout). ``limit`` stops after
    that many blocks.
    """
    opening, closing = f"<{tag}>", f"</{tag}>"
    spans = []
    pos = 0
    while True:
        start = text.find(opening, pos)
        if start == -1:
            break
        start += len(opening)
        end = text.find(closing, start)
        if end == -1:  # no closing tag after this opening tag, hence none after any later one
            break
        spans.append((start, end))
        if len(spans) == limit:
            break
        pos = end + len(closing)
    return spans


def load_json(text: str) -> tuple[Any, str]:
    """``json.loads`` that never raises: ``(value, "")`` or ``(None, reason)``.

    Besides invalid JSON this covers what the original did not catch: nesting deeper than the interpreter's
    recursion limit and integers longer than Python's 4,300-digit conversion limit.
    """
    try:
        return json.loads(text), ""
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON in <tool_call>: {exc.msg} (char {exc.pos})"
    except RecursionError:
        return None, "JSON nested too deeply"
    except (ValueError, TypeError) as exc:
        return None, f"invalid JSON value: {str(exc)[:80]}"


#: Reasons of :func:`load_json` for what ``json.loads`` raises beyond ``JSONDecodeError`` (deep nesting, a too-long
#: integer): the original reward caught only ``JSONDecodeError``, so it crashed on these.
UNCAUGHT_JSON_ERRORS = ("JSON nested too deeply", "invalid JSON value")


def decode_tool_calls(content: str) -> tuple[Any, str]:
    """Decode the content of one ``<tool_call>`` block with the original's post-processing.

    Strip, ``json.loads``; a JSON string is decoded once more (failure → ``None``); a dict becomes a one-element
    list. Returns ``(value, error)``; ``value`` is whatever JSON gave (a list, but also ``None`` or a number —
    :func:`well_formed` says whether it is a usable call list).
    """
    value, error = load_json(content.strip())
    if error:
        return None, error
    if isinstance(value, str):
        value, error = load_json(value)
        if error:
            if error.startswith(UNCAUGHT_JSON_ERRORS):
                return None, f"JSON string inside <tool_call>: {error}"
            return None, "JSON string inside <tool_call> is not JSON itself"
    if isinstance(value, dict):
        value = [value]
    return value, ""


def well_formed(calls: Any) -> bool:
    """Every item is a dict with ``name`` and ``arguments`` (extra keys allowed), as the original's validator.

    Unlike the original it answers ``False`` instead of raising for a JSON number or boolean.
    """
    if not isinstance(calls, (list, str)):
        return False
    return all(isinstance(item, dict) and "name" in item and "arguments" in item for item in calls)


@dataclass
class ParsedResponse:
    """What a response says: its reasoning, its calls (``None`` when there is no usable block) and why not."""

    text: str
    think: str | None
    calls: list[dict[str, Any]] | None
    error: str
    num_blocks: int


def parse_response(
    text: str,
    block: BlockPolicy = "last",
    marker: str = QWEN_ASSISTANT_MARKER,
) -> ParsedResponse:
    """Read ``<think>`` and ``<tool_call>`` blocks of ``text`` (cut at the last ``marker`` first).

    ``block`` picks the tool-call block: ``"last"`` (the training reward), ``"first"`` (the original BFCL handler) or
    ``"all"`` (Qwen's native format, one call per block; the blocks' calls are concatenated).
    ``calls`` is a well-formed call list or ``None`` with ``error`` saying why.
    """
    text = cut_at_last_marker(text, marker)
    think_spans = find_blocks(text, "think")
    think = text[think_spans[0][0] : think_spans[0][1]] if think_spans else None
    spans = find_blocks(text, "tool_call")
    if not spans:
        return ParsedResponse(text, think, None, "no <tool_call> block", 0)
    chosen = spans if block == "all" else [spans[0] if block == "first" else spans[-1]]
    calls: list[dict[str, Any]] = []
    for start, end in chosen:
        value, error = decode_tool_calls(text[start:end])
        if error:
            return ParsedResponse(text, think, None, error, len(spans))
        if not well_formed(value) or isinstance(value, str):
            return ParsedResponse(text, think, None, "tool call is not a list of {name, arguments}", len(spans))
        calls.extend(value)
    return ParsedResponse(text, think, calls, "", len(spans))
