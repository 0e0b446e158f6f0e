"""ToolACE dialogs -> unified samples (one per assistant call turn), in faithful or improved mode.

Not an entry point (``data_process.py`` drives it). Accepts the hub roles ``user/assistant/tool`` and the
LLaMA-Factory roles ``human/gpt/observation/function_call``; both are mapped to the latter, which the original code
expects.

Single-/multi-turn rule (the original's split step was never released): a dialog is **multi-turn iff it has at least
two user turns**, else single-turn. Each sample's ``id`` follows the original: ``toolace_multiple_turn`` iff its
context has >= 2 messages, else ``toolace_single_turn``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from label_checks import call_problem, result_names
from records import RawOptions, RowRejected

from tool_n1.call_strings import CallStringError, is_valid_call_string, parse_call_string
from tool_n1.prompts import DEFAULT_PREAMBLE, LIST_INTRO
from tool_n1.schema import normalize_tool

ROLE_ALIASES = {
    "user": "human",
    "human": "human",
    "assistant": "gpt",
    "gpt": "gpt",
    "tool": "observation",
    "observation": "observation",
    "function_call": "function_call",
}
SYSTEM_MARKER = "JSON format that you can invoke:\n"
_FAITHFUL_TOOL_LIST = re.compile(
    re.escape(LIST_INTRO) + r"\n(.*?)\nShould you decide to return the function call\(s\).", re.DOTALL
)
_DECODER = json.JSONDecoder()


def dialog_group(conversations: list[dict[str, Any]]) -> str:
    """``multi`` if the dialog has >= 2 user turns, else ``single`` (our documented split rule)."""
    users = sum(1 for turn in conversations if ROLE_ALIASES.get(turn.get("from")) == "human")
    return "multi" if users >= 2 else "single"


def sample_id(context_length: int) -> str:
    return "toolace_multiple_turn" if context_length >= 2 else "toolace_single_turn"


# --------------------------------------------------------------------------- tools from the system prompt


def extract_tools_faithful(system: str) -> tuple[list[dict[str, Any]], str]:
    """The original rule: text between the list intro and "Should you decide…", stripped, last 2 chars -> "]"."""
    match = _FAITHFUL_TOOL_LIST.search(system)
    if not match:
        raise RowRejected("tool_list_missing", "no tool list between the list intro and 'Should you decide…'")
    text = match.group(1).strip()
    try:
        tools = json.loads(text[:-2] + "]")
    except json.JSONDecodeError as exc:
        raise RowRejected(
            "tool_list_unparsable", f"the original's 'drop last 2 chars + ]' rule breaks the list (it crashes): {exc}"
        ) from None
    if not tools:
        raise RowRejected("tool_list_empty", "empty tool list (the original skips the dialog)")
    _check_tool_names(tools)
    return tools, system[: system.find(SYSTEM_MARKER) + len(SYSTEM_MARKER)]


def extract_tools_robust(system: str, tools_field: Any = None) -> tuple[list[dict[str, Any]], str]:
    """JSON-decode the list right after the intro sentence; else use a non-empty ``tools`` field of the row."""
    start = system.find(LIST_INTRO)
    if start >= 0:
        list_start = _DECODER_SKIP.match(system, start + len(LIST_INTRO)).end()
        try:
            tools, _ = _DECODER.raw_decode(system, list_start)
        except json.JSONDecodeError as exc:
            raise RowRejected("tool_list_unparsable", f"tool list in the system prompt: {exc}") from None
        raw_system = system[: start + len(LIST_INTRO)] + "\n"
    else:
        try:
            tools = json.loads(tools_field) if isinstance(tools_field, str) and tools_field.strip() else tools_field
        except json.JSONDecodeError as exc:
            raise RowRejected("tool_list_unparsable", f"'tools' field: {exc}") from None
        if not tools:
            raise RowRejected("tool_list_missing", "no tool list in the system prompt and no 'tools' field")
        raw_system = DEFAULT_PREAMBLE
    if not isinstance(tools, list) or not tools:
        raise RowRejected("tool_list_empty", f"tool list is {'empty' if not tools else type(tools).__name__}")
    _check_tool_names(tools)
    return tools, raw_system


_DECODER_SKIP = re.compile(r"\s*")


def _check_tool_names(tools: Any) -> None:
    if not isinstance(tools, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise RowRejected("tool_list_unparsable", "the tool list is not a list of objects with a string 'name'")


# --------------------------------------------------------------------------- call turns


def _json_call_list(value: str, faithful: bool) -> list[dict[str, Any]]:
    """A LLaMA-Factory ``function_call`` value (JSON) -> call list; raises ValueError with the reason."""
    if faithful and not (value.startswith("[") and value.endswith("]")):
        raise ValueError("function_call value is not a JSON list (the original keeps it as context only)")
    calls = json.loads(value)
    if isinstance(calls, dict):
        calls = [calls]
    if not isinstance(calls, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls):
        raise ValueError("function_call value is not a list of {'name', 'arguments'} objects")
    for call in calls:
        if isinstance(call.get("arguments"), str) and not faithful:
            call["arguments"] = json.loads(call["arguments"])
        if not faithful and not isinstance(call.get("arguments"), dict):
            raise ValueError(f"call {call['name']!r}: arguments is not an object")
    return calls


def _bracket_calls(value: str, options: RawOptions, tool_names) -> list[dict[str, Any]] | None:
    """A ToolACE bracket call string -> calls; ``None`` if the turn is not a call candidate (plain text)."""
    if options.call_parser == "faithful":
        if not (value.startswith("[") and value.endswith("]")):
            return None
        calls = parse_call_string(value, mode="faithful")
        if not calls or not is_valid_call_string(value):
            raise CallStringError("rejected by the original parser/validator (kept as assistant text)")
        return calls
    stripped = value.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return None
    calls = parse_call_string(stripped, mode="robust", tool_names=tool_names)
    if not calls:
        return None  # "[]": an explicit empty call list is plain text here
    return calls


def _tools_and_system(row: dict[str, Any], options: RawOptions) -> tuple[list[dict[str, Any]], str]:
    system = row.get("system")
    if not isinstance(system, str):
        if options.tool_extraction == "faithful" or not row.get("tools"):
            raise RowRejected("missing_field", "no string 'system' field (and no 'tools' field)")
        system = ""  # ShareGPT layout (glaive): the tool list is in the "tools" field
    if options.tool_extraction == "faithful":
        tools, raw_system = extract_tools_faithful(system)
    else:
        tools, raw_system = extract_tools_robust(system, row.get("tools"))
    if options.normalize_tools:
        try:
            tools = [normalize_tool(tool) for tool in tools]
        except ValueError as exc:
            raise RowRejected("tool_list_unparsable", str(exc)) from None
    return tools, raw_system


def process_dialog(row: dict[str, Any], options: RawOptions, group: str | None = None) -> dict[str, Any]:
    """One dialog -> ``{"group", "samples": [(turn, record, is_call_turn)], "call_turns", "rejected": [(turn, code,
    detail)]}``. Raises :class:`RowRejected` when the dialog cannot be used at all."""
    faithful = options.call_parser == "faithful"
    conversations = row.get("conversations")
    if isinstance(conversations, str):
        try:
            conversations = json.loads(conversations)
        except json.JSONDecodeError as exc:
            raise RowRejected("malformed_conversations", f"'conversations' is not JSON: {exc}") from None
    if not isinstance(conversations, list) or not all(
        isinstance(t, dict) and isinstance(t.get("from"), str) and isinstance(t.get("value"), str)
        for t in conversations
    ):
        raise RowRejected("malformed_conversations", "'conversations' is not a list of {'from', 'value'} strings")
    tools, raw_system = _tools_and_system(row, options)
    tool_names = {tool["name"] for tool in tools}

    turns = []
    for turn in conversations:
        role = ROLE_ALIASES.get(turn["from"])
        if role is None and not faithful:
            raise RowRejected("unknown_role", f"unknown speaker {turn['from']!r}")
        turns.append({"from": role or turn["from"], "value": turn["value"]})

    group = group or dialog_group(conversations)
    outcome: dict[str, Any] = {"group": group, "samples": [], "call_turns": 0, "rejected": []}
    rejected, context_chars, cap = outcome["rejected"], 0, options.max_context_chars
    for index, turn in enumerate(turns):
        calls, plain_text = None, turn["from"] == "gpt"
        try:
            if turn["from"] == "gpt":
                calls = _bracket_calls(turn["value"], options, tool_names)
            elif turn["from"] == "function_call":
                calls = _json_call_list(turn["value"], faithful)
        except (CallStringError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            outcome["call_turns"] += 1
            code = "call_string_unparseable" if turn["from"] == "gpt" else "function_call_unusable"
            rejected.append((index, code, str(exc)))
            plain_text = faithful and turn["from"] == "gpt"  # the original still makes a no-call sample from it
            calls = None
        if calls is None:
            if plain_text and options.include_nocall and not (cap and context_chars > cap):
                outcome["samples"].append((index, _record(raw_system, tools, turns[:index], []), False))
            context_chars += len(turn["value"])
            continue
        outcome["call_turns"] += 1
        try:
            turn["from"], turn["value"] = "function_call", json.dumps(calls)
            problem = _call_turn_problem(calls, tools, tool_names, turns, index, options)
        except (TypeError, ValueError) as exc:  # a set/complex/bytes literal (the original crashed here)
            problem = ("call_value_not_json", f"a call argument is not a JSON value: {exc}")
        if problem is None and cap and context_chars > cap:
            problem = ("context_too_long", f"{context_chars} characters of context (limit --max-context-chars {cap})")
        context_chars += len(turn["value"])
        if problem is not None:
            rejected.append((index, *problem))
            continue
        outcome["samples"].append((index, _record(raw_system, tools, turns[:index], calls), True))
    return outcome


def _call_turn_problem(calls, tools, tool_names, turns, index, options) -> tuple[str, str] | None:
    """Why a parsed call turn cannot be a sample (``(reason, detail)``), or ``None``."""
    unknown = sorted({call["name"] for call in calls} - tool_names)
    if unknown:
        return "unknown_tool_in_answer", f"not in the tool list: {unknown}"
    answered = None
    if index + 1 < len(turns) and turns[index + 1]["from"] == "observation":
        answered = result_names(turns[index + 1]["value"])
    if not calls and answered and options.mode == "improved":
        return "empty_call_with_tool_results", f"no call, but the next turn holds results of {sorted(answered)}"
    if options.check_tool_results and answered is not None and answered != {call["name"] for call in calls}:
        called = sorted({call["name"] for call in calls})
        return "calls_disagree_with_tool_results", f"called {called}, results from {sorted(answered)}"
    return call_problem(calls, tools, options)


def _record(raw_system, tools, context, answer) -> dict[str, Any]:
    return {
        "id": sample_id(len(context)),
        "raw_system": raw_system,
        "tools": tools,
        "conversations": context,
        "answer": answer,
    }
