"""API-Bank level-1 ("Call" mode, 399 API calls) evaluation, as the Tool-N1 paper reports it (Figure 3).

Data (either format; ``--data`` is the JSON file):

* official: ``level-1-api.json`` (DAMO-ConvAI ``api-bank/json_test_data`` at 5c38bb7) plus its dialogue folder
  ``level-1-given-desc/`` (``--dialogues``; default: beside the JSON file), which holds the typed ground truth;
* Hammer's ``apibank_l1.json`` (``MadeAgents/Hammer`` ``data/test/original``): messages + tools + JSON answers.

Prompting (the paper does not say how it prompted API-Bank): system = the RL training system prompt
(:func:`tool_n1.prompts.training_system_prompt`) with the sample's APIs as tools, so train and eval agree
(``--prompt bfcl``: the original BFCL-handler prompt); user = ``"The current year is 2023.\\n\\n"`` (from the official
instruction) + the official dialogue transcript (``User:`` / ``AI:`` / ``API-Request: [...]->result`` lines ending with
``Generate API Request:``). The reply is decoded with :func:`tool_n1.parsing.parse_response`, ``--block first`` by
default (the original Tool-N1 evaluation code read the first ``<tool_call>`` block; ``last`` is the training
reward's reading). Level-2 data (``ToolSearcher``) is detected and labelled as such (``--level``).

Scorers (each number in the report names its scorer):

* ``structural`` (ours, all 399): exactly one call; API name equal; parameter names equal as sets; values equal after
  light normalisation — strings compared after stripping outer whitespace (case-sensitive); a number or boolean
  matches the ground-truth string it spells (``12345`` ~ ``"12345"``, ``true`` ~ ``"True"``); a JSON list/object
  matches a ground-truth string holding that Python/JSON literal (``health_data``), element-wise with the same rules.
* ``official_rules`` (re-implementation of ``evaluator_by_json.py`` for stateless, offline APIs only): our calls are
  rendered ``[Name(k='v', ...)]`` and re-read with the official regexes (values become strings), then compared with
  each API's ``check_api_call_correctness`` input normalisation. The API is not executed: for these APIs the output
  is a function of the normalised input over a read-only database, so equal normalised inputs stand for equal outputs.
  APIs that need state from earlier calls, tokens, or the network are excluded (listed in the report).

Commands::

    python eval/apibank.py --data ../shared/fixtures/apibank/damo_convai/level-1-api.json \\
        --base-url http://127.0.0.1:8000/v1 --model tool-n1-7b --output outputs/apibank/tool-n1-7b
    python eval/apibank.py --data .../level-1-api.json --predictions outputs/apibank/tool-n1-7b/raw.jsonl \\
        --output outputs/apibank/rescore          # score saved raw outputs offline
    python eval/apibank.py --data .../level-1-api.json --echo --output outputs/apibank/echo   # ground-truth ceiling
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai_generate
import replies

from tool_n1.cli import ArgumentParser
from tool_n1.prompts import bfcl_system_prompt, format_response, training_system_prompt
from tool_n1.schema import normalize_tool

FIGURE3 = {"LLaMA-3.1-8B": 60.41, "GPT-4o-mini": 73.10, "GPT-4o": 77.16, "Tool-N1-7B": 81.28, "Tool-N1-14B": 82.19}
YEAR_LINE = "The current year is 2023.\n\n"
_INT_TEXT = re.compile(r"[-+]?[0-9]{1,4000}")
_TYPES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "list(str)": "array",
    "dict": "object",
}


@dataclass
class Sample:
    id: str
    api: str
    tools: list[dict[str, Any]]
    transcript: str
    answer: dict[str, Any]  # {"name", "arguments"} with the dialogue's (string) values
    dedup_key: str


def _tool(name: str, description: str, params: dict[str, Any]) -> dict[str, Any]:
    properties = {
        k: {"type": _TYPES.get(str(v.get("type")), "string"), "description": v.get("description", "")}
        for k, v in params.items()
    }
    schema = {"type": "object", "properties": properties, "required": list(params)}
    return normalize_tool({"name": name, "description": description, "parameters": schema})


def _official(rows: list[dict[str, Any]], dialogues: Path) -> list[Sample]:
    if not dialogues.is_dir():
        raise FileNotFoundError(f"dialogue folder {dialogues} not found (pass --dialogues .../level-1-given-desc)")
    cache: dict[str, list[dict[str, Any]]] = {}
    samples = []
    for row in rows:
        file = row["file"]
        if file not in cache:  # the official evaluator's expansion: per API turn, (history→API), (history+API→next)
            turns = [json.loads(line) for line in (dialogues / file).read_text(encoding="utf-8").splitlines() if line]
            expanded = []
            for i, turn in enumerate(turns):
                if turn["role"] == "API":
                    expanded += [turn, turns[i + 1] if i + 1 < len(turns) else {"role": "END"}]
            cache[file] = expanded
        turn = cache[file][int(row["id"])]
        if turn["role"] != "API":
            raise ValueError(f"{file} sample {row['id']} is not an API call in {dialogues}")
        descriptions = [
            json.loads(line) for line in row["instruction"].split("API descriptions:\n", 1)[1].splitlines()
        ]
        tools = [_tool(d["name"], d["description"], d["input_parameters"]) for d in descriptions]
        answer = {"name": turn["api_name"], "arguments": turn["param_dict"]}
        key = json.dumps([row["instruction"], row["input"], row["expected_output"]])
        samples.append(Sample(f"{file}#{row['id']}", turn["api_name"], tools, row["input"], answer, key))
    return samples


def _hammer(rows: list[dict[str, Any]]) -> list[Sample]:
    samples = []
    for index, row in enumerate(rows):
        lines = []
        for message in row["query"]:
            role, content = message["role"], message["content"]
            if role == "tool":
                lines[-1] += f"->{content}"
            else:
                lines.append({"user": "User: ", "agent": "AI: ", "assistant": "API-Request: "}[role] + content)
        tools = [_tool(t["name"], t.get("description", ""), t.get("parameters") or {}) for t in row["tools"]]
        answer = row["answers"][0]
        key = json.dumps([row["query"], row["answers"]], sort_keys=True)
        samples.append(Sample(f"row{index}", answer["name"], tools, "\n".join(lines) + "\n", answer, key))
    return samples


def load(path: str | Path, dialogues: str | Path | None = None) -> list[Sample]:
    """Samples from the official ``level-1-api.json`` (+ dialogue folder) or Hammer's ``apibank_l1.json``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"API-Bank data file {path} not found")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        raise ValueError(f"{path}: expected a non-empty JSON list of samples")
    if {"file", "id", "instruction", "input", "expected_output"} <= rows[0].keys():
        return _official(rows, Path(dialogues) if dialogues else path.parent / "level-1-given-desc")
    if {"query", "tools", "answers"} <= rows[0].keys():
        return _hammer(rows)
    raise ValueError(f"{path}: unknown format (keys {sorted(rows[0])}); expected level-1-api.json or apibank_l1.json")


def detect_level(samples: list[Sample], data_path: str | Path = "") -> int:
    """2 when the data is API-Bank's level-2 (Retrieve+Call: a ``ToolSearcher`` tool or call, or a
    ``level-2-toolsearcher`` dialogue); else 1 (Call)."""
    for sample in samples:
        names = {tool.get("name") for tool in sample.tools} | {sample.api}
        if "ToolSearcher" in names or "level-2-toolsearcher" in sample.id:
            return 2
    return 2 if "level-2-api" in Path(data_path).name else 1


LEVEL_LABELS = {1: "API-Bank level-1 (Call)", 2: "API-Bank level-2 (Retrieve+Call; not a paper metric)"}


def messages_for(sample: Sample, prompt: str = "train") -> list[dict[str, str]]:
    system = bfcl_system_prompt(sample.tools) if prompt == "bfcl" else training_system_prompt(sample.tools)
    return [{"role": "system", "content": system}, {"role": "user", "content": YEAR_LINE + sample.transcript}]


# --------------------------------------------------------------------------- structural scorer
def _literal(text: str) -> Any:
    for reader in (json.loads, ast.literal_eval):
        try:
            return reader(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return None


def value_matches(pred: Any, gold: Any) -> bool:
    if isinstance(gold, str):
        if isinstance(pred, str):
            return pred.strip() == gold.strip()
        if isinstance(pred, bool):
            return gold.strip().lower() == str(pred).lower()
        if isinstance(pred, int) and _INT_TEXT.fullmatch(gold.strip()):
            return int(gold.strip()) == pred  # exact, also past float range (a 400-digit integer)
        if isinstance(pred, (int, float)):
            try:
                return float(gold.strip()) == float(pred)
            except (ValueError, OverflowError):
                return False
        if isinstance(pred, (list, dict)):
            parsed = _literal(gold.strip())
            return isinstance(parsed, (list, dict)) and value_matches(pred, parsed)
        return pred is None and gold.strip() in ("None", "null")
    if isinstance(gold, list):
        return isinstance(pred, list) and len(pred) == len(gold) and all(map(value_matches, pred, gold))
    if isinstance(gold, dict):
        return (
            isinstance(pred, dict)
            and pred.keys() == gold.keys()
            and all(value_matches(pred[k], gold[k]) for k in gold)
        )
    return value_matches(pred, str(gold)) if not isinstance(pred, str) else pred.strip() == str(gold)


def structural(calls: list[dict[str, Any]] | None, answer: dict[str, Any]) -> tuple[bool, str]:
    if calls is None:
        return False, "no parsable tool call"
    if len(calls) != 1:
        return False, f"{len(calls)} calls (expected 1)"
    call = calls[0]
    if call.get("name") != answer["name"]:
        return False, f"name {call.get('name')!r} != {answer['name']!r}"
    args = call.get("arguments")
    if not isinstance(args, dict) or set(args) != set(answer["arguments"]):
        return False, "parameter names differ"
    bad = [k for k, v in answer["arguments"].items() if not value_matches(args[k], v)]
    return (not bad), (f"wrong value for {bad}" if bad else "")


# --------------------------------------------------------------------------- official rules (stateless, offline)
def _date(text: str, fmt: str, out: str | None = None) -> Any:
    """The evaluator's date ``format_check``: zero-pad a short year, parse, re-format (an error object on failure)."""
    parts = text.strip().split("-")
    if len(parts) == 3 and len(parts[0]) != 4:
        parts[0] = parts[0].zfill(4)
    try:
        return datetime.datetime.strptime("-".join(parts), fmt).strftime(out or fmt)
    except ValueError:
        return ValueError


def _history_date(text: str) -> Any:
    full = _date(text, "%Y-%m-%d", "%m-%d")
    return _date(text, "%m-%d") if full is ValueError else full


def _upper(text: str) -> Any:
    return text.upper().strip() or None


def _lower(text: str) -> Any:
    return text.strip().lower() or ValueError  # an empty symptom/name raises in the API


#: API → {parameter: normaliser}; all parameters are required. ``None``: compared exactly.
OFFICIAL_RULES: dict[str, dict[str, Any]] = {
    "Calculator": {"formula": lambda s: s.replace(" ", "")},
    "EmergencyKnowledge": {"symptom": _lower},
    "SymptomSearch": {"symptom": _lower},
    "QueryHistoryToday": {"date": _history_date},
    "QueryStock": {"stock_code": _upper, "date": lambda s: _date(s, "%Y-%m-%d")},
    "QueryHealthData": {
        "user_id": _upper,
        "start_time": lambda s: _date(s, "%Y-%m-%d %H:%M:%S"),
        "end_time": lambda s: _date(s, "%Y-%m-%d %H:%M:%S"),
    },
    "SendEmail": {"receiver": _lower, "subject": str.strip, "content": str.strip},
    "DocumentQA": {"url": str.strip, "question": str.strip},
    "ImageCaption": {"url": None},
    "SpeechRecognition": {"url": None},
    "GetToday": {},
}
EXCLUDED_REASONS = {
    "network": ["Dictionary", "Translate", "Wiki", "SearchEngine", "ToolSearcher"],
    "state from earlier calls / tokens / writes": [
        "GetUserToken",
        "RegisterUser",
        "ForgotPassword",
        "ModifyPassword",
        "DeleteAccount",
        "OpenBankAccount",
        "QueryBalance",
        "RecordHealthData",
        "AppointmentRegistration",
        "QueryRegistration",
        "ModifyRegistration",
        "CancelRegistration",
        "AddAgenda",
        "ModifyAgenda",
        "DeleteAgenda",
        "QueryAgenda",
        "AddAlarm",
        "ModifyAlarm",
        "DeleteAlarm",
        "QueryAlarm",
        "AddReminder",
        "ModifyReminder",
        "DeleteReminder",
        "QueryReminder",
        "AddMeeting",
        "ModifyMeeting",
        "DeleteMeeting",
        "QueryMeeting",
        "AddScene",
        "ModifyScene",
        "DeleteScene",
        "QueryScene",
        "TimedSwitch",
        "CancelTimedSwitch",
        "BookHotel",
        "PlayMusic",
    ],
}
#: The official evaluator's regexes; :func:`find_call` and :func:`find_params` give their matches in linear time.
CALL_REGEX = re.compile(r"\[(\w+)\((.*)\)\]")
PARAM_REGEX = re.compile(r"(\w+)\s*=\s*['\"](.+?)['\"]|(\w+)\s*=\s*(\[.*\])|(\w+)\s*=\s*(\w+)")
_WORD = re.compile(r"\w+")
_SPACES = re.compile(r"\s*")


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end == -1 else end


def find_call(text: str) -> tuple[str, str] | None:
    """``CALL_REGEX.search(text)`` groups, in linear time (the regex backtracks over the whole line per ``[``).

    ``.`` stops at a newline and ``.*`` is greedy, so the arguments run to the last ``)]`` of the line of the first
    ``[name(`` that has one after it.
    """
    last_close: dict[int, int] = {}  # line end → last ")]" on that line (computed once per line)
    pos = 0
    while (start := text.find("[", pos)) != -1:
        word = _WORD.match(text, start + 1)
        pos = start + 1
        if word is None or not text.startswith("(", word.end()):
            continue
        line_end = _line_end(text, word.end())
        if line_end not in last_close:
            last_close[line_end] = text.rfind(")]", 0, line_end)
        close = last_close[line_end]
        if close > word.end():
            return word.group(), text[word.end() + 1 : close]
    return None


def find_params(text: str) -> list[tuple[str, str]]:
    """``(key, value)`` for each ``PARAM_REGEX.finditer(text)`` match, in linear time (the regex retries every
    position inside a word and rescans to the next quote or line end from each)."""
    params = []
    next_quote = [len(text)] * (len(text) + 1)  # first ' or " at or after i
    for i in range(len(text) - 1, -1, -1):
        next_quote[i] = i if text[i] in "'\"" else next_quote[i + 1]
    last_bracket: dict[int, int] = {}
    pos = 0
    while pos < len(text):
        word = _WORD.match(text, pos)
        if word is None:
            pos += 1
            continue
        after = _SPACES.match(text, word.end()).end()
        if not text.startswith("=", after):
            pos = word.end()  # every later start inside this word meets the same text after it
            continue
        start = _SPACES.match(text, after + 1).end()
        line_end = _line_end(text, start)
        if start < len(text) and text[start] in "'\"" and start + 2 <= line_end:
            close = next_quote[start + 2]  # ".+?": at least one character, then the first quote
            if close < line_end:
                params.append((word.group(), text[start + 1 : close]))
                pos = close + 1
                continue
        if text.startswith("[", start):
            if line_end not in last_bracket:
                last_bracket[line_end] = text.rfind("]", 0, line_end)
            close = last_bracket[line_end]
            if close > start:
                params.append((word.group(), text[start : close + 1]))
                pos = close + 1
                continue
        value = _WORD.match(text, start)
        if value is not None:
            params.append((word.group(), value.group()))
            pos = value.end()
            continue
        pos = word.end()
    return params


def official_string(calls: list[dict[str, Any]]) -> str:
    """Our calls in API-Bank's ``[Name(k='v', ...)]`` form, rendered as its evaluator renders API turns."""
    rendered = []
    for call in calls:
        args = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
        params = ", ".join(f"{key}='{value}'" for key, value in args.items())
        rendered.append(f"{call.get('name')}({params})")
    inner = ", ".join(rendered)
    return f"[{inner}]"


def official_rules(calls: list[dict[str, Any]] | None, sample: Sample) -> tuple[bool, str] | None:
    """``None`` where the API is outside the stateless offline subset; else ``(correct, reason)``."""
    rules = OFFICIAL_RULES.get(sample.api)
    if rules is None:
        return None
    try:
        match = find_call(official_string(calls)) if calls else None
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. an int past Python's str-conversion limit
        return False, f"NO_API_CALL ({str(exc)[:60]})"
    if match is None:
        return False, "NO_API_CALL"
    name, params = match[0], dict(find_params(match[1]))
    if name != sample.api:
        return False, "API_NAME_MISMATCH"
    if set(params) - set(rules):
        return False, "INVALID_INPUT_PARAMETER"
    if set(rules) - set(params):
        return False, "MISS_INPUT_ARGUMENT"
    gold = {k: str(v) for k, v in sample.answer["arguments"].items()}
    for key, norm in rules.items():
        pred_value, gold_value = (params[key], gold[key]) if norm is None else (norm(params[key]), norm(gold[key]))
        if pred_value is ValueError:
            return False, "HAS_EXCEPTION"
        if pred_value != gold_value:
            return False, "INPUT_MISMATCH"
    return True, ""


# --------------------------------------------------------------------------- scoring and report
def _acc(correct: int, total: int) -> dict[str, Any]:
    return {"correct": correct, "total": total, "accuracy": round(100 * correct / total, 2) if total else None}


def score(
    samples: list[Sample], outputs: dict[str, Any], block: str = "first", level: int = 1, limited: bool = False
) -> dict[str, Any]:
    """Score raw outputs; every sample is counted once under one status of :mod:`replies` (all but ``parsed`` are
    wrong). Returns the report dict (JSON-ready)."""
    per_item, per_api = [], defaultdict(Counter)
    seen: set[str] = set()
    totals = Counter()
    statuses = Counter()
    for sample in samples:
        reply = replies.read_reply(outputs, sample.id, block)
        statuses[reply.status] += 1
        ok, reason = structural(reply.calls, sample.answer) if reply.calls is not None else (False, reply.reason)
        official = official_rules(reply.calls, sample)
        first = sample.dedup_key not in seen
        seen.add(sample.dedup_key)
        totals.update({"n": 1, "ok": ok, "distinct": first, "distinct_ok": ok and first})
        if official is not None:
            totals.update({"off_n": 1, "off_ok": official[0], "off_struct_ok": ok})
        per_api[sample.api].update({"n": 1, "structural": ok, "official_rules": bool(official and official[0])})
        per_item.append(
            {
                "id": sample.id,
                "api": sample.api,
                "status": reply.status,
                "structural": ok,
                "reason": reason,
                "official_rules": None if official is None else official[0],
            }
        )
    included = sorted(OFFICIAL_RULES)
    scope = f"first {len(samples)} samples (--limit)" if limited else f"all {len(samples)}"
    return {
        "benchmark": LEVEL_LABELS[level],
        "level": level,
        "block": block,
        "scope": scope,
        "structural_all": {**_acc(totals["ok"], totals["n"]), "scorer": "structural (ours)"},
        "structural_distinct": {
            **_acc(totals["distinct_ok"], totals["distinct"]),
            "scorer": "structural (ours), first of each exact duplicate",
        },
        "official_rules_subset": {
            **_acc(totals["off_ok"], totals["off_n"]),
            "scorer": "official rules re-implemented, stateless offline APIs only",
            "apis": included,
            "structural_on_same_subset": _acc(totals["off_struct_ok"], totals["off_n"]),
        },
        "excluded_from_official_rules": EXCLUDED_REASONS,
        "reply_status": {status: statuses[status] for status in replies.STATUSES},
        "per_api": {
            api: {
                "n": c["n"],
                "structural": c["structural"],
                "official_rules": c["official_rules"] if api in OFFICIAL_RULES else None,
            }
            for api, c in sorted(per_api.items())
        },
        "paper_figure3": FIGURE3 if level == 1 else None,
        "items": per_item,
    }


def echo_outputs(samples: list[Sample]) -> dict[str, str]:
    """Ground truth rendered as Tool-N1 replies (the ceiling run)."""
    return {s.id: format_response([s.answer], think="echo") for s in samples}


def print_table(report: dict[str, Any], model: str) -> None:
    rows = [
        (f"structural, {report['scope']}", report["structural_all"]),
        ("structural, distinct", report["structural_distinct"]),
        ("official rules, stateless subset", report["official_rules_subset"]),
        ("structural on that subset", report["official_rules_subset"]["structural_on_same_subset"]),
    ]
    print(f"{report['benchmark']} — {model} — {report['scope']}, block {report['block']}")
    for label, acc in rows:
        print(f"  {label:<36} {acc['correct']:>4}/{acc['total']:<4} {acc['accuracy']}")
    print("  replies: " + ", ".join(f"{k} {v}" for k, v in report["reply_status"].items()))
    if report["paper_figure3"]:
        print("  paper Figure 3 (level-1, all 399): " + ", ".join(f"{k} {v}" for k, v in FIGURE3.items()))


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--data", required=True, help="level-1-api.json (official) or apibank_l1.json (Hammer)")
    parser.add_argument("--dialogues", help="official dialogue folder (default: level-1-given-desc beside --data)")
    parser.add_argument(
        "--level",
        choices=["auto", "1", "2"],
        default="auto",
        help="API-Bank level of --data: auto (detected: level-2 has ToolSearcher) or the level it "
        "must be (a mismatch is an error); the paper reports level-1 only (default auto)",
    )
    openai_generate.add_benchmark_flags(parser, limit_help="only the first N samples (smoke runs; labelled so)")
    args = parser.parse_args(argv)
    try:
        samples = load(args.data, args.dialogues)
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"cannot load API-Bank data: {exc}")
    level = detect_level(samples, args.data)
    if args.level != "auto" and int(args.level) != level:
        parser.error(f"--level {args.level} but {args.data} holds level-{level} data")
    samples = samples[: args.limit] if args.limit else samples
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    try:
        outputs, model = openai_generate.benchmark_outputs(
            args, lambda: [(s.id, messages_for(s, args.prompt)) for s in samples], lambda: echo_outputs(samples)
        )
    except openai_generate.IncompleteGeneration as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = score(samples, outputs, args.block, level, limited=bool(args.limit))
    report.update({"model": model, "data": str(args.data), "prompt": args.prompt})
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table(report, model)
    print(f"report: {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
