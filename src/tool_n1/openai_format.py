"""A Tool-N1 reply as an OpenAI chat message: reasoning, content and ``tool_calls`` kept apart.

Tool-N1 models answer ``<think>…</think><tool_call>[{"name": …, "arguments": {…}}]</tool_call>`` (or, like Qwen,
one call per ``<tool_call>`` block). :func:`split_reply` turns such a text into what an OpenAI client expects; the
vLLM plugin (``serving/tool_n1_vllm.py``) and any other server build on it. Calls are read from every
``<tool_call>`` block outside ``<think>`` (block policy ``all`` of :mod:`tool_n1.parsing`); a block that does not
decode to a call list leaves the text as content, so nothing the model wrote is lost.

For streaming, :func:`stable_prefix` cuts a growing text before anything that may still change meaning (a
partial tag, an unclosed ``<tool_call>``), so splitting successive stable prefixes only ever appends.

>>> reply = split_reply('<think>Paris.</think><tool_call>[{"name": "w", "arguments": {"city": "Paris"}}]</tool_call>')
>>> reply.reasoning, reply.content, openai_tool_calls(reply.calls)[0]["function"]
('Paris.', '', {'name': 'w', 'arguments': '{"city": "Paris"}'})
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tool_n1.parsing import decode_tool_calls, well_formed

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_TAGS = (THINK_OPEN, THINK_CLOSE, CALL_OPEN, CALL_CLOSE)


@dataclass
class SplitReply:
    """``reasoning``: the text of the ``<think>`` blocks (``None`` when there is none); ``content``: the rest
    without the tool-call blocks that were read; ``calls``: the ``{name, arguments}`` calls, in order."""

    reasoning: str | None
    content: str
    calls: list[dict[str, Any]]
    error: str = ""


def _segments(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` pieces in order: ``think`` (inside ``<think>``, an unclosed one runs to the end),
    ``call`` (inside a closed ``<tool_call>`` outside reasoning) and ``text`` (everything else, tags dropped)."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        think = text.find(THINK_OPEN, pos)
        call = text.find(CALL_OPEN, pos)
        starts = [i for i in (think, call) if i != -1]
        if not starts:
            pieces.append(("text", text[pos:]))
            break
        start = min(starts)
        pieces.append(("text", text[pos:start]))
        if start == think:
            end = text.find(THINK_CLOSE, start + len(THINK_OPEN))
            if end == -1:
                pieces.append(("think", text[start + len(THINK_OPEN) :]))
                break
            pieces.append(("think", text[start + len(THINK_OPEN) : end]))
            pos = end + len(THINK_CLOSE)
        else:
            end = text.find(CALL_CLOSE, start + len(CALL_OPEN))
            if end == -1:  # an unclosed block is plain text
                pieces.append(("text", text[start:]))
                break
            pieces.append(("call", text[start + len(CALL_OPEN) : end]))
            pos = end + len(CALL_CLOSE)
    return [(kind, piece) for kind, piece in pieces if piece or kind == "call"]


def split_reply(text: str, *, strip: bool = True) -> SplitReply:
    """Reasoning, content and calls of a complete reply (``strip``: trim the content's outer white space)."""
    reasoning: list[str] = []
    content: list[str] = []
    calls: list[dict[str, Any]] = []
    error = ""
    for kind, piece in _segments(text):
        if kind == "think":
            reasoning.append(piece.strip() if strip else piece)
        elif kind == "call":
            value, why = decode_tool_calls(piece)
            if why or not isinstance(value, list) or not well_formed(value):
                error = error or why or "tool call is not a list of {name, arguments}"
                content.append(CALL_OPEN + piece + CALL_CLOSE)
            else:
                calls.extend(value)
        else:
            content.append(piece)
    body = "".join(content)
    return SplitReply("\n".join(reasoning) if reasoning else None, body.strip() if strip else body, calls, error)


def stable_prefix(text: str) -> str:
    """The longest prefix of a growing reply whose split cannot change: without a trailing partial tag and without
    an unclosed ``<tool_call>`` block outside reasoning."""
    for size in range(min(len(text), max(map(len, _TAGS)) - 1), 0, -1):
        if any(tag.startswith(text[-size:]) and tag != text[-size:] for tag in _TAGS):
            text = text[:-size]
            break
    in_think = False
    pos = 0
    while True:
        if in_think:
            end = text.find(THINK_CLOSE, pos)
            if end == -1:
                return text
            in_think, pos = False, end + len(THINK_CLOSE)
            continue
        think, call = text.find(THINK_OPEN, pos), text.find(CALL_OPEN, pos)
        if call != -1 and (think == -1 or call < think):
            end = text.find(CALL_CLOSE, call + len(CALL_OPEN))
            if end == -1:
                return text[:call]
            pos = end + len(CALL_CLOSE)
        elif think != -1:
            in_think, pos = True, think + len(THINK_OPEN)
        else:
            return text


def openai_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI ``tool_calls`` entries (``arguments`` as a JSON string, as the API sends them); no ids."""
    result = []
    for call in calls:
        arguments = call["arguments"]
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        result.append({"type": "function", "function": {"name": str(call["name"]), "arguments": text}})
    return result
