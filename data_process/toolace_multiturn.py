"""ToolACE multi-turn dialogs → per-turn samples in chat form, for the per-turn reward without execution.

    .venv/rl/bin/python data_process/toolace_multiturn.py --input data/raw/toolace.json \\
        --output data/verl_toolace_turns/train.parquet

The single-turn pipeline (``data_process.py``) packs the dialog history into one prompt string. This converter keeps
the dialog's structure: for every assistant call turn of a dialog with at least two user turns it writes one verl
row whose ``prompt`` is the real message list up to that turn — Tool-N1 system prompt with the dialog's tools, user
turns, earlier assistant calls in the Tool-N1 reply format (``<think></think> <tool_call>[…]</tool_call>``), tool
results as ``tool`` messages, assistant texts — and whose ground truth is that turn's call list. The single-turn
reward (``pkg://tool_n1.reward``) then scores each turn: the paper's reward applied turn by turn, nothing executed
(ToolACE's tools are simulated by an LLM, the recorded results are replayed as context).

Input: a JSON list or JSON lines of ToolACE rows in either layout — hub (``user`` / ``assistant`` / ``tool``, calls
as ``[Name(key=value, …)]`` strings) or LLaMA-Factory (``human`` / ``gpt`` / ``function_call`` / ``observation``).
Tools come from the row's ``tools`` field, else from the JSON list after the system prompt's list sentence.
Every input row is either converted or counted with its reason (printed at the end and written beside the output
as ``<output>.report.json``); an existing output is refused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tool_n1.call_strings import CallStringError, parse_call_string
from tool_n1.prompts import LIST_INTRO, format_response, training_system_prompt

log = logging.getLogger("toolace_multiturn")
DATA_SOURCE = "toolace_multi_turn"
ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "function_call": "call",
    "tool": "tool",
    "observation": "tool",
}


class Rejected(ValueError):
    """A dialog (or turn) that cannot be converted; ``code`` is the counted reason."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


def dialog_tools(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The row's tools: its ``tools`` field (JSON text or list), else the JSON list after the list sentence."""
    field = row.get("tools")
    tools: Any = None
    if isinstance(field, str) and field.strip():
        try:
            tools = json.loads(field)
        except (ValueError, RecursionError):
            raise Rejected("tools_unparsable", "'tools' field is not JSON") from None
    elif isinstance(field, list):
        tools = field
    if not tools:  # no field, or an empty one ("[]" in the LLaMA-Factory layout): the system prompt's list
        system = row.get("system")
        start = system.find(LIST_INTRO) if isinstance(system, str) else -1
        if start < 0:
            raise Rejected("tools_missing", "no 'tools' field and no tool list in the system prompt")
        text = system[start + len(LIST_INTRO) :].lstrip()
        try:
            tools, _ = json.JSONDecoder().raw_decode(text)
        except (ValueError, RecursionError):
            raise Rejected("tools_unparsable", "tool list in the system prompt is not JSON") from None
    if not isinstance(tools, list) or not tools:
        raise Rejected("tools_missing", "empty tool list")
    if not all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools):
        raise Rejected("tools_unparsable", "a tool is not an object with a string 'name'")
    return tools


def turn_calls(role: str, value: str) -> list[dict[str, Any]] | None:
    """The calls of one turn, or ``None`` for a turn that is not a call (assistant text, user, tool)."""
    if role == "call":
        try:
            calls = json.loads(value)
        except (ValueError, RecursionError):
            raise Rejected("call_unparsable", "function_call value is not JSON") from None
        calls = [calls] if isinstance(calls, dict) else calls
    elif role == "assistant" and value.strip().startswith("[") and value.strip().endswith("]"):
        try:
            calls = parse_call_string(value.strip(), mode="robust")
        except (CallStringError, RecursionError) as exc:
            raise Rejected("call_unparsable", str(exc)[:120]) from None
        if not calls:
            return None
    else:
        return None
    for call in calls if isinstance(calls, list) else [None]:
        if not (isinstance(call, dict) and isinstance(call.get("name"), str)):
            raise Rejected("call_unparsable", "a call is not an object with a string 'name'")
        if isinstance(call.get("arguments"), str):
            try:
                call["arguments"] = json.loads(call["arguments"])
            except (ValueError, RecursionError):
                raise Rejected("call_unparsable", "arguments string is not JSON") from None
        if not isinstance(call.get("arguments"), dict):
            raise Rejected("call_unparsable", f"arguments of {call['name']!r:.60} are not an object")
    return [{"name": c["name"], "arguments": c["arguments"]} for c in calls]


def dialog_samples(row: Any, row_index: int) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Per-turn samples of one dialog and the count of turns left out, by reason (raises :class:`Rejected`)."""
    if not isinstance(row, dict):
        raise Rejected("not_an_object")
    conversations = row.get("conversations")
    if isinstance(conversations, str):
        try:
            conversations = json.loads(conversations)
        except (ValueError, RecursionError):
            raise Rejected("conversations_unparsable") from None
    if not isinstance(conversations, list) or not all(
        isinstance(t, dict) and isinstance(t.get("from"), str) and isinstance(t.get("value"), str)
        for t in conversations
    ):
        raise Rejected("conversations_unparsable", "not a list of {'from', 'value'} strings")
    roles = [ROLES.get(t["from"]) for t in conversations]
    if None in roles:
        raise Rejected("unknown_role", repr(conversations[roles.index(None)]["from"])[:40])
    if roles.count("user") < 2:
        raise Rejected("single_turn_dialog", "fewer than two user turns")
    tools = dialog_tools(row)
    names = {t["name"] for t in tools}
    messages: list[dict[str, str]] = [{"role": "system", "content": training_system_prompt(tools)}]
    samples, skipped = [], Counter()
    for index, (role, turn) in enumerate(zip(roles, conversations, strict=True)):
        try:
            calls = turn_calls(role, turn["value"])
        except Rejected as exc:
            skipped[exc.code] += 1
            calls = None
            if role == "call":
                break  # the rest of the dialog depends on a call we cannot read
        if calls is None:
            messages.append({"role": "assistant" if role == "call" else role, "content": turn["value"]})
            continue
        unknown = sorted({c["name"] for c in calls} - names)
        if unknown:
            skipped["unknown_tool_in_answer"] += 1
        elif any(m["role"] == "user" for m in messages):
            samples.append(
                {
                    "data_source": DATA_SOURCE,
                    "prompt": [dict(m) for m in messages],
                    "ability": "tool_use",
                    "reward_model": {"style": "rule", "ground_truth": json.dumps(calls)},
                    "extra_info": {"id": f"{row_index}:{index}", "turn": index, "prompt_type": "qwen"},
                }
            )
        messages.append({"role": "assistant", "content": format_response(calls)})
    return samples, skipped


def read_rows(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("["):
        return json.loads(text)
    rows = []
    for line in text.splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except (ValueError, RecursionError):
                rows.append(None)  # counted as not_an_object
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--input", type=Path, required=True, help="ToolACE rows: a JSON list or JSON lines")
    parser.add_argument("--output", type=Path, required=True, help="verl parquet to write (.jsonl: JSON lines)")
    parser.add_argument("--split", default="train", help="extra_info.split of every row [train]")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.output.exists() and not args.overwrite:
        log.error("%s exists; pass --overwrite to replace it", args.output)
        return 2
    rows = read_rows(args.input)
    samples: list[dict[str, Any]] = []
    dialogs: Counter[str] = Counter()
    turns_left_out: Counter[str] = Counter()
    for row_index, row in enumerate(rows):
        try:
            found, skipped = dialog_samples(row, row_index)
        except Rejected as exc:
            dialogs[exc.code] += 1
            continue
        dialogs["converted"] += 1
        turns_left_out.update(skipped)
        samples.extend(found)
    for index, sample in enumerate(samples):
        sample["extra_info"].update(index=index, split=args.split)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    if args.output.suffix == ".jsonl":
        tmp.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(samples), tmp)
    tmp.replace(args.output)
    report = {"rows": len(rows), "dialogs": dict(dialogs), "turns_left_out": dict(turns_left_out)}
    report["samples"] = len(samples)
    args.output.with_name(args.output.name + ".report.json").write_text(json.dumps(report, indent=1) + "\n")
    log.info(
        "%d rows -> %d per-turn samples; dialogs %s; turns left out %s",
        len(rows),
        len(samples),
        dict(dialogs),
        dict(turns_left_out),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
