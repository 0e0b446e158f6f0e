"""xLAM rows (``id``, ``query``, ``answers`` JSON string, ``tools`` JSON string) -> one unified sample each.

Not an entry point (``data_process.py`` drives it). Faithful mode keeps ``tools`` and ``answer`` exactly as decoded
(xLAM's flat parameter maps) and, like the original, does not check answer names against the tools; improved mode
normalises the tools to JSON schema and rejects an answer that names a tool not in the row's list.
"""

from __future__ import annotations

import json
from typing import Any

from label_checks import call_problem
from records import RawOptions, RowRejected

from tool_n1.prompts import DEFAULT_PREAMBLE
from tool_n1.schema import normalize_tool


def _decoded(row: dict[str, Any], key: str) -> Any:
    """The field, JSON-decoded when it is a string."""
    if key not in row or row[key] is None:
        raise RowRejected("missing_field", f"no {key!r} field")
    value = row[key]
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        code = "tool_list_unparsable" if key == "tools" else "malformed_answer"
        raise RowRejected(code, f"{key!r} is not valid JSON: {exc}") from None


def process_row(row: dict[str, Any], options: RawOptions) -> dict[str, Any]:
    """One xLAM row -> a unified record; raises :class:`RowRejected` with the reason."""
    query = row.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RowRejected("missing_field", "no non-empty string 'query' field")
    answer = _decoded(row, "answers")
    tools = _decoded(row, "tools")
    if not isinstance(answer, list) or not all(
        isinstance(call, dict) and isinstance(call.get("name"), str) and isinstance(call.get("arguments"), dict)
        for call in answer
    ):
        raise RowRejected("malformed_answer", "'answers' is not a list of {'name': str, 'arguments': object}")
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise RowRejected("tool_list_unparsable", "'tools' is not a list of objects with a string 'name'")
    if options.normalize_tools:
        try:
            tools = [normalize_tool(tool) for tool in tools]
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
