"""xLAM rows (``id``, ``query``, ``answers`` JSON string, ``tools`` JSON string) -> one unified sample each.

Not an entry point (``data_process.py`` drives it). Faithful mode keeps ``tools`` and ``answer`` exactly as decoded
(xLAM's flat parameter maps) and, like the original, does not check answer names against the tools; improved mode
normalises the tools to JSON schema and rejects an answer that names a tool not in the row's list.
"""

from __future__ import annotations

import json
from typing import Any

from label_checks import call_problem
from records import SHARED_TOOLS, RawOptions, RowRejected, decode_json_list, decode_object_list, normalized_tools

from tool_n1.prompts import DEFAULT_PREAMBLE


def _decoded(row: dict[str, Any], key: str) -> tuple[Any, list[str] | None]:
    """The decoded field and, for a JSON-string list, each element's source text (a cache key)."""
    if key not in row or row[key] is None:
        raise RowRejected("missing_field", f"no {key!r} field")
    value = row[key]
    if not isinstance(value, str):
        return value, None
    try:
        stripped = value.strip()
        if stripped.startswith("["):
            if key == "tools" and SHARED_TOOLS.active:  # shortcut: tool texts seen before are not decoded again
                decoded = decode_object_list(stripped)
                if decoded is not None:
                    return decoded
            else:  # valid JSON gives what decode_json_list gives; anything else takes its path (and error)
                try:
                    return json.loads(stripped), None
                except ValueError:
                    pass
            items, texts, end = decode_json_list(stripped)
            if stripped[end:].strip():
                raise json.JSONDecodeError("extra data", stripped, end)
            return items, texts
        return json.loads(value), None
    except json.JSONDecodeError as exc:
        code = "tool_list_unparsable" if key == "tools" else "malformed_answer"
        raise RowRejected(code, f"{key!r} is not valid JSON: {exc}") from None


def process_row(row: dict[str, Any], options: RawOptions) -> dict[str, Any]:
    """One xLAM row -> a unified record; raises :class:`RowRejected` with the reason."""
    query = row.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RowRejected("missing_field", "no non-empty string 'query' field")
    answer, _ = _decoded(row, "answers")
    tools, tool_texts = _decoded(row, "tools")
    if not isinstance(answer, list) or not all(
        isinstance(call, dict) and isinstance(call.get("name"), str) and isinstance(call.get("arguments"), dict)
        for call in answer
    ):
        raise RowRejected("malformed_answer", "'answers' is not a list of {'name': str, 'arguments': object}")
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise RowRejected("tool_list_unparsable", "'tools' is not a list of objects with a string 'name'")
    if options.normalize_tools:
        try:
            tools = normalized_tools(tools, tool_texts)
        except ValueError as exc:
            raise RowRejected("tool_list_unparsable", str(exc)) from None
    if options.mode == "improved":
        unknown = sorted({call["name"] for call in answer} - {tool["name"] for tool in tools})
        if unknown:
            raise RowRejected("unknown_tool_in_answer", f"not in the tool list: {unknown}")
    problem = call_problem(answer, tools, options)
    if problem is not None:
        raise RowRejected(*problem)
    return {
        "id": "xlam",
        "raw_system": DEFAULT_PREAMBLE,
        "tools": tools,
        "conversations": [{"from": "human", "value": query}],
        "answer": answer,
    }
