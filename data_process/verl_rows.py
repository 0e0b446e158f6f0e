"""Stage 2 rows: a unified JSONL line -> the values of one verl parquet row (not an entry point).

:class:`RowBuilder` takes a fast path that never decodes or re-encodes a tool it has seen before and gives exactly
what :func:`reference_row` (the original per-record code) gives; anything unusual takes the reference path. Used by
``to_verl_parquet.py`` through ``arrow_batches.BatchBuilder``.
"""

from __future__ import annotations

import json
from typing import Any

from tool_n1.prompts import TRAINING_TEMPLATE, training_system_prompt

CHAT_ROLES = {"human": "user", "gpt": "assistant", "observation": "tool", "function_call": "assistant"}
TOOL_CACHE_SIZE = 100_000
WARMUP_LOOKUPS = 20_000  # after this many tool lookups, the fast path stays on only if a quarter of them hit
_TEMPLATE_OK = TRAINING_TEMPLATE.count("{tools}") == 1
_TEMPLATE_TAIL = TRAINING_TEMPLATE.split("{tools}")[-1]


def previous_call_text(value: str, style: str) -> str:
    """How an earlier call turn appears in the prompt.

    ``json-string`` (original): ``json.dumps`` of the value, which is already a JSON string, so the call list appears
    double-encoded. ``tool-call-block``: ``<tool_call>[...]</tool_call>``, the format the model must produce, without
    a ``<think>`` part (earlier reasoning is not shown, as in Qwen's own multi-turn templates).
    """
    if style == "json-string":
        return json.dumps(value)
    try:
        return f"<tool_call>{json.dumps(json.loads(value))}</tool_call>"
    except json.JSONDecodeError:
        return value


def build_prompt(record: dict[str, Any], previous_calls: str, dedupe_tool_intro: bool) -> list[dict[str, str]]:
    """System message + context turns; unknown speakers are dropped, as the original did."""
    system = training_system_prompt(record["tools"], record["raw_system"], dedupe=dedupe_tool_intro)
    prompt = [{"role": "system", "content": system}]
    for turn in record["conversations"]:
        role = CHAT_ROLES.get(turn["from"])
        if role is None:
            continue
        content = turn["value"]
        if turn["from"] == "function_call":
            content = previous_call_text(content, previous_calls)
        prompt.append({"role": role, "content": content})
    return prompt


def _tool_pieces(inner: bytes) -> list[bytes]:
    """``{...}, {...}`` -> candidate element texts (split at every ``}, {``; each is verified by the caller)."""
    parts = inner.split(b"}, {")
    if len(parts) == 1:
        return parts
    return [parts[0] + b"}", *[b"{" + part + b"}" for part in parts[1:-1]], b"{" + parts[-1]]


class RowBuilder:
    """Unified JSONL line -> the values of one parquet row, exactly as :func:`reference_row` computes them.

    The fast path never decodes or re-encodes a tool it has seen before: the line's ``"tools"`` list is cut at
    ``}, {`` into element texts, and each text maps (cache) to ``json.dumps(json.loads(text))``. The split is only
    trusted when every piece is a complete JSON value (checked on a cache miss), so the list is exactly those
    elements; the rest of the line is decoded as two objects (before and after the list), which proves the list is
    the top-level ``"tools"`` member. Anything unusual goes to :func:`reference_row` (the original code).
    """

    def __init__(self, opts):
        self.opts = opts
        self.tool_texts: dict[bytes, tuple[str, str]] = {}
        self.heads: dict[str, str] = {}
        self.fast_rows = self.reference_rows = 0
        self.lookups = self.hits = 0
        self.fast = _TEMPLATE_OK

    def row(self, line: bytes) -> tuple:
        if self.fast and self.lookups >= WARMUP_LOOKUPS and self.hits * 4 < self.lookups:
            self.fast, self.tool_texts = False, {}  # tools do not repeat: the reference path is faster
        row = self.fast_row(line) if self.fast else None
        if row is None:
            self.reference_rows += 1
            return reference_row(line, self.opts)
        self.fast_rows += 1
        check_encodable(row)  # a lone surrogate ("\ud800" in the JSON) cannot go into parquet
        return row

    def _tool(self, piece: bytes) -> tuple[str, str]:
        self.lookups += 1
        entry = self.tool_texts.get(piece)
        if entry is not None:
            self.hits += 1
        else:
            text = json.dumps(json.loads(piece))
            entry = (text, '{"type": "function", "function": ' + text + "}")  # = json.dumps of the wrapper
            if len(self.tool_texts) >= TOOL_CACHE_SIZE:
                self.tool_texts.clear()
            self.tool_texts[piece] = entry
        return entry

    def _head(self, raw_system: str) -> str:
        """The system message up to the tool lines (preamble + template head) for this ``raw_system``."""
        head = self.heads.get(raw_system)
        if head is None:
            full = training_system_prompt([], raw_system, dedupe=self.opts.dedupe_tool_intro)
            head = full[: len(full) - len(_TEMPLATE_TAIL)]
            if len(self.heads) >= TOOL_CACHE_SIZE:
                self.heads.clear()
            self.heads[raw_system] = head
        return head

    def fast_row(self, line: bytes) -> tuple | None:
        start = line.find(b'"tools": [{')
        if start < 2 or line[start - 2 : start] != b", ":
            return None
        first = start + 9  # the list's "["
        end = line.find(b'}], "', first)
        if end < 0:
            return None
        before, after = line[: start - 2] + b"}", b"{" + line[end + 4 :]
        try:
            record = json.loads(before)
            rest = json.loads(after)
            tools = [self._tool(piece) for piece in _tool_pieces(line[first + 1 : end + 1])]
        except ValueError:  # json.JSONDecodeError, UnicodeDecodeError
            return None
        if type(record) is not dict or type(rest) is not dict or "tools" in record or "tools" in rest:
            return None
        record.update(rest)  # later members win, as in json.loads
        raw_system, conversations = record.get("raw_system"), record.get("conversations")
        if type(raw_system) is not str or type(conversations) is not list or "answer" not in record:
            return None
        pairs = []
        for turn in conversations:
            if type(turn) is not dict:
                return None
            speaker, value = turn.get("from"), turn.get("value")
            if type(speaker) is not str or type(value) is not str:
                return None
            pairs.append((speaker, value))
        system = self._head(raw_system) + "\n".join([tool[1] for tool in tools]) + _TEMPLATE_TAIL
        prompt = [("system", system)]
        for speaker, value in pairs:
            role = CHAT_ROLES.get(speaker)
            if role is not None:
                if speaker == "function_call":
                    value = previous_call_text(value, self.opts.previous_calls)
                prompt.append((role, value))
        return (
            "[" + ", ".join([tool[0] for tool in tools]) + "]",
            pairs,
            json.dumps(record["answer"]),
            raw_system,
            prompt,
            str(record.get("id", "")),
            str(record.get("origin", "")),
        )


def reference_row(line: bytes, opts) -> tuple:
    """The original per-record code (``json.loads`` of the whole line, ``json.dumps`` of every field).

    Raises ``UnicodeEncodeError`` (a ``ValueError``: the record is rejected) when a string holds a lone surrogate
    (``"\\ud800"`` in the JSON), which no parquet string can store."""
    record = json.loads(line)
    prompt = build_prompt(record, opts.previous_calls, opts.dedupe_tool_intro)
    row = (
        json.dumps(record["tools"]),
        [(t["from"], t["value"]) for t in record["conversations"]],
        json.dumps(record["answer"]),
        record["raw_system"],
        [(m["role"], m["content"]) for m in prompt],
        str(record.get("id", "")),
        str(record.get("origin", "")),
    )
    check_encodable(row)
    return row


def check_encodable(row: tuple) -> None:
    """Encode every string of a row as UTF-8 (raises ``UnicodeEncodeError`` for a lone surrogate)."""
    for field in row:
        if type(field) is str:
            field.encode("utf-8")
        else:
            for pair in field:
                pair[0].encode("utf-8")
                pair[1].encode("utf-8")
