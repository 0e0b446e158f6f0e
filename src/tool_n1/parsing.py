"""Reading a model response: ``<think>`` / ``<tool_call>`` blocks and the tool-call JSON inside them.

One function picks the tool-call block(s) of a response, :func:`select_calls`, with an explicit block policy:

* ``"last"``: the last ``<tool_call>`` block (the original training reward);
* ``"first"``: the first block (the original BFCL evaluation handler);
* ``"all"``: every block outside ``<think>``, calls concatenated (Qwen's native one-call-per-block output; the reward's
  ``native_blocks`` option); more than :data:`MAX_BLOCKS` blocks is an error.

The training reward (:mod:`tool_n1.reward`) and every evaluator (BFCL, API-Bank, ACEBench, held-out) read responses
through it (the evaluators via :func:`parse_response`), so the same policy reads a response the same way in training
and evaluation; each caller's default policy is documented where it is set.

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
BLOCK_POLICIES = ("first", "last", "all")
#: Under ``"all"``, a response with more ``<tool_call>`` blocks than this is degenerate (an error, not decoded).
MAX_BLOCKS = 256


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


def _calls_outside_think(text: str, spans: list[tuple[int, int]]) -> tuple[Any, str]:
    think_spans = find_blocks(text, "think")
    calls: list[Any] = []
    t = 0
    for start, end in spans:
        while t < len(think_spans) and think_spans[t][1] <= start:
            t += 1
        if t < len(think_spans) and think_spans[t][0] <= start:
            continue  # a call the model only considered inside its reasoning
        value, error = decode_tool_calls(text[start:end])
        if error:
            return None, error
        if not isinstance(value, list):
            return value, ""
        calls.extend(value)
    return calls, ""


def select_calls(text: str, block: BlockPolicy) -> tuple[Any, str, int]:
    """The decoded tool-call value of ``text`` under the block policy: ``(value, error, blocks seen)``.

    ``value`` is what :func:`decode_tool_calls` gave (``None`` with ``error`` when the chosen block is not JSON or
    there is no block; otherwise any JSON value, which :func:`well_formed` judges). Under ``"all"`` a block holding a
    non-list value ends the walk with that value, and ``blocks seen`` stops counting at ``MAX_BLOCKS + 1``.
    """
    if block not in BLOCK_POLICIES:
        raise ValueError(f"unknown block policy {block!r}; valid: {', '.join(BLOCK_POLICIES)}")
    spans = find_blocks(text, "tool_call", limit=MAX_BLOCKS + 1 if block == "all" else None)
    if not spans:
        return None, "no <tool_call> block", 0
    if block == "all":
        if len(spans) > MAX_BLOCKS:
            return None, f"more than {MAX_BLOCKS} <tool_call> blocks", len(spans)
        value, error = _calls_outside_think(text, spans)
        return value, error, len(spans)
    start, end = spans[0] if block == "first" else spans[-1]
    value, error = decode_tool_calls(text[start:end])
    return value, error, len(spans)


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

    ``block`` is the block policy of :func:`select_calls`. ``calls`` is a well-formed call list or ``None`` with
    ``error`` saying why.
    """
    text = cut_at_last_marker(text, marker)
    think_spans = find_blocks(text, "think")
    think = text[think_spans[0][0] : think_spans[0][1]] if think_spans else None
    value, error, num_blocks = select_calls(text, block)
    if error:
        return ParsedResponse(text, think, None, error, num_blocks)
    if not well_formed(value) or isinstance(value, str):
        return ParsedResponse(text, think, None, "tool call is not a list of {name, arguments}", num_blocks)
    return ParsedResponse(text, think, value, "", num_blocks)
