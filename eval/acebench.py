"""ACEBench "Normal" evaluation as the Tool-N1 paper reports it (Figure 3): atom (6 × 50) + single-turn (100 + 100).

Data: ``--data`` is a language folder of ``chenchen0103/ACEBench`` (``data_all/data_en`` or ``data_zh``) holding
``data_<category>.json`` and ``possible_answer/data_<category>.json`` (JSON lines). ``--answers current`` scores the
data as found (56dd66c, Oct 2025); ``--answers paper-era --changes changes_since_e6db74b.jsonl`` swaps back the 6 lines
changed since ``e6db74b`` (the data the paper used) and applies the paper-era checker (see below). The report names
the data version and checker of every number.

Prompting (the paper does not say): system = the RL training system prompt with the row's function docs as tools
(docs that use ``arguments`` instead of ``parameters`` are read as ``parameters``); user = the row's ``time`` sentence
(when not empty), a blank line, then its ``question`` text verbatim. ``--prompt bfcl`` uses the BFCL-handler prompt.
Replies are decoded with :func:`tool_n1.parsing.parse_response`, ``--block first`` by default (the original Tool-N1
evaluation code read the first ``<tool_call>`` block; ``last`` is the training reward's reading).

Scoring applies the rules of ACEBench's ``normal_checker`` (``model_eval/checker.py``) to our decoded calls directly:
a call ``{"name": n, "arguments": a}`` is the ``{n: a}`` item its AST decoder yields for ``[n(k=repr(v), ...)]``.
Rules: same number of calls; the multiset of function names equals the answer's (``_1``/``_2`` suffixes dropped);
each answer call needs a model call of that name passing the single-call check (required parameters present, no
parameter outside the schema or the answer, type check with its quirks, then: strings — the answer, standardised
(spaces and ``,./-_*^`` removed, lower case), is a substring of the standardised value; lists — equal after
standardising string items; objects — recursive key check with substring comparison of leaves; lists of objects —
element-wise; booleans and numbers are type-checked only, never value-checked — an upstream quirk, kept); a list
of alternative answers passes if any alternative does. Paper-era checker: whitespace is
deleted from the model's string values (the old ``"".join(text.split())`` on the reply before decoding); the
Oct-2025 rewrite of the parallel-matching loop changes error messages only (same verdicts), so it is not emulated.
Per-category accuracy; atom = mean of the 6 atom categories; single_turn = mean of the 2; overall =
mean(atom, single_turn) (the paper's aggregation is unknown; the sample-weighted mean over 500 is given too).

Commands::

    python eval/acebench.py --data ../shared/fixtures/acebench/data_en --base-url http://127.0.0.1:8000/v1 \\
        --model tool-n1-7b --output outputs/acebench/tool-n1-7b
    python eval/acebench.py --data .../data_en --predictions outputs/acebench/tool-n1-7b/raw.jsonl \\
        --answers paper-era --changes ../shared/fixtures/acebench/changes_since_e6db74b.jsonl --output outputs/ace-old
    python eval/acebench.py --data .../data_en --echo --output outputs/acebench/echo      # ground-truth ceiling
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai_generate
import replies

from tool_n1.cli import ArgumentParser
from tool_n1.prompts import bfcl_system_prompt, format_response, training_system_prompt
from tool_n1.schema import normalize_tool

ATOM = [f"normal_atom_{k}" for k in ("bool", "enum", "list", "number", "object_deep", "object_short")]
SINGLE_TURN = ["normal_single_turn_single_function", "normal_single_turn_parallel_function"]
CATEGORIES = ATOM + SINGLE_TURN
FIGURE3 = {"LLaMA-3.1-8B": 50.63, "GPT-4o-mini": 81.63, "Tool-N1-7B": 82.34, "Tool-N1-14B": 86.00, "GPT-4o": 87.00}
#: Rows whose ground truth, echoed, fails the official (current) checker.
KNOWN_UNSATISFIABLE = {
    "normal_single_turn_parallel_function_42": "answer event_details=[] for an array-of-objects parameter: the nested "
    "type check has no answer item to validate against and marks the value invalid (fails upstream too, when echoed)"
}
# ACEBench's schema-type → Python-type table (note "number" → int and "enum" → a non-type: both quirks are kept)
PY_TYPES = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
    "list": list,
    "object": dict,
    "objectArray": list,
    "list(string)": list,
    "list(enum)": list,
    "int": int,
    "enum": enumerate,
    "number": int,
}
NESTED = {"array", "tuple", "list(string)", "list(enum)", "object", "objectArray"}


@dataclass
class Row:
    id: str
    category: str
    question: str
    functions: list[dict[str, Any]]
    time: str
    answer: Any  # {name[_k]: {param: value}} or a list of such alternatives


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"ACEBench file {path} not found")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from None
    return rows


def load(data_dir: str | Path, categories: list[str] = CATEGORIES, changes: str | Path | None = None) -> list[Row]:
    """Rows of ``categories``; with ``changes``, the paper-era (``e6db74b``) lines replace the changed ones."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"ACEBench data folder {data_dir} not found (expected .../data_all/data_en)")
    old: dict[tuple[str, str], dict[str, Any]] = {}
    if changes:
        for change in _jsonl(Path(changes)):
            kind = "answer" if "possible_answer/" in change["file"] else "prompt"
            old[(kind, change["id"])] = json.loads(change["line_at_e6db74b"])
    rows = []
    for category in categories:
        prompts = _jsonl(data_dir / f"data_{category}.json")
        answers = {a["id"]: a for a in _jsonl(data_dir / "possible_answer" / f"data_{category}.json")}
        for prompt in prompts:
            prompt = old.get(("prompt", prompt["id"]), prompt)
            if prompt["id"] not in answers or "function" not in prompt:
                raise ValueError(f"{category}: row {prompt.get('id')} has no answer or no function list")
            answer = old.get(("answer", prompt["id"]), answers[prompt["id"]])["ground_truth"]
            rows.append(
                Row(prompt["id"], category, prompt["question"], prompt["function"], prompt.get("time", ""), answer)
            )
    return rows


def tools_for(row: Row) -> list[dict[str, Any]]:
    tools = []
    for doc in row.functions:
        doc = dict(doc)
        if "parameters" not in doc and isinstance(doc.get("arguments"), dict):
            doc["parameters"] = doc.pop("arguments")
        tool = normalize_tool({k: doc[k] for k in ("name", "description", "parameters") if k in doc})
        tools.append(tool)
    return tools


def messages_for(row: Row, prompt: str = "train") -> list[dict[str, str]]:
    tools = tools_for(row)
    system = bfcl_system_prompt(tools) if prompt == "bfcl" else training_system_prompt(tools)
    user = f"{row.time}\n\n{row.question}" if row.time else row.question
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# --------------------------------------------------------------------------- the checker's rules
def standardize(text: str) -> str:
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def _type_ok(value: Any, answer: Any, type_name: str, nested: Any) -> tuple[bool, bool]:
    """ACEBench's ``type_checker``: ``(valid, is_variable)``; a "variable" skips the value check."""
    expected = PY_TYPES[type_name]
    answer_type = type(answer) if answer != "" else None
    variable = answer_type is not None and answer_type != expected
    value = {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value
    if type(value) is expected:
        if nested is None:
            return True, variable
        for alternative in answer:  # the nested check iterates over the answer's items, as the original does
            if not isinstance(alternative, list) or all(_type_ok(v, alternative, str(nested), None)[0] for v in value):
                return True, variable
        return False, variable  # the original marks the result invalid here and never resets it (e.g. answer [])
    if answer_type is not None and (type(value) is answer_type or answer == value):
        return True, True
    return False, variable


def _dict_ok(value: Any, answer: dict[str, Any]) -> bool:
    if not isinstance(value, dict) or len(value) != len(answer):
        return False
    for key, item in value.items():
        item = {"true": True, "false": False}.get(item, item) if isinstance(item, str) else item
        if key not in answer:
            return False
        expected = answer[key]
        if isinstance(expected, dict):
            if not _dict_ok(item, expected):
                return False
            continue
        got = standardize(item) if isinstance(item, str) else item
        want = standardize(expected) if isinstance(expected, str) else expected
        if str(want) not in str(got):
            return False
    return True


def _list_ok(value: list[Any], answer: list[Any]) -> bool:
    return [standardize(v) if isinstance(v, str) else v for v in value] == [
        standardize(a) if isinstance(a, str) else a for a in answer
    ]


def call_ok(doc: dict[str, Any], call: dict[str, Any], answer: dict[str, Any]) -> bool:
    """``simple_function_checker`` for one ``{name: args}`` model call against one ``{name: args}`` answer."""
    expected = next(iter(answer.values()))
    args = next(iter(call.values()))
    params = doc.get("parameters")
    if args == {} or params == {}:
        return args == {} and params == {}
    if expected == params["properties"]:
        return True
    if expected == {}:
        return False
    if doc["name"] not in call:
        return False
    properties, required = params["properties"], params.get("required", [])
    if any(p not in args for p in required):
        return False
    for name, value in args.items():
        if name not in properties or name not in expected:
            return False
        type_name = properties[name]["type"]
        nested = None
        if type_name in NESTED:
            item_type = properties[name].get("items", {}).get("type")
            if item_type is None:
                item_type = "string" if "string" in type_name else "enum" if "enum" in type_name else "dict"
            nested = PY_TYPES[item_type]
        if type_name == "float" and type(value) is int:
            value = float(value)
        valid, variable = _type_ok(value, expected[name], type_name, nested)
        if not valid:
            return False
        if variable:
            continue
        target = PY_TYPES[type_name]
        if target is dict and not _dict_ok(value, expected[name]):
            return False
        if target is list and nested is dict:
            if len(value) != len(expected[name]) or not all(map(_dict_ok, value, expected[name])):
                return False
        elif target is str and standardize(expected[name]) not in standardize(value):
            return False
        elif target is list and nested is not dict and not _list_ok(value, expected[name]):
            return False
    return True


def _strip_spaces(value: Any) -> Any:
    if isinstance(value, str):
        return "".join(value.split())
    if isinstance(value, list):
        return [_strip_spaces(v) for v in value]
    if isinstance(value, dict):
        return {k: _strip_spaces(v) for k, v in value.items()}
    return value


def answer_ok(docs: list[dict[str, Any]], calls: list[dict[str, Any]], answer: dict[str, Any]) -> bool:
    """``normal_checker`` for one alternative answer ``{name[_k]: args}``."""
    if len(calls) != len(answer):
        return False
    wanted = [(re.sub(r"_\d+$", "", key), {re.sub(r"_\d+$", "", key): args}, key) for key, args in answer.items()]
    if Counter(next(iter(c)) for c in calls) != Counter(name for name, _, _ in wanted):
        return False
    for name, expected, key in wanted:
        doc = next((d for d in docs if d["name"] in key), None)
        if doc is None:
            return False
        if not any(call_ok(doc, c, expected) for c in calls if next(iter(c)) == name):
            return False
    return True


def check(row: Row, calls: list[dict[str, Any]] | None, paper_era: bool = False) -> bool:
    """Whether ``calls`` pass ``normal_checker`` for one of the row's answers (never raises)."""
    if calls is None or not all(
        isinstance(c.get("arguments"), dict) and isinstance(c.get("name"), str) for c in calls
    ):
        return False
    if replies.nesting_depth(calls) > replies.MAX_NESTING:
        return False  # the recursive checks below would exhaust the stack
    model = [{c["name"]: _strip_spaces(c["arguments"]) if paper_era else c["arguments"]} for c in calls]
    alternatives = row.answer if isinstance(row.answer, list) else [row.answer]
    for alternative in alternatives:
        try:
            if answer_ok(row.functions, model, alternative):
                return True
        except (KeyError, TypeError, AttributeError, ValueError, RecursionError):  # the original raises: wrong
            continue
    return False


# --------------------------------------------------------------------------- report
def echo_outputs(rows: list[Row]) -> dict[str, str]:
    """Ground truth rendered as Tool-N1 replies (the first alternative; ``_k`` suffixes dropped)."""
    outputs = {}
    for row in rows:
        answer = row.answer[0] if isinstance(row.answer, list) else row.answer
        calls = [{"name": re.sub(r"_\d+$", "", k), "arguments": v} for k, v in answer.items()]
        outputs[row.id] = format_response(calls, think="echo")
    return outputs


def score(
    rows: list[Row], outputs: dict[str, Any], paper_era: bool = False, block: str = "first", limit: int | None = None
) -> dict[str, Any]:
    """Per-category accuracy; every row counted once under one status of :mod:`replies` (all but ``parsed`` are
    wrong; a failed row's reason is in ``failed``)."""
    per_category: dict[str, Counter] = {}
    failed = {}
    statuses = Counter()
    for row in rows:
        reply = replies.read_reply(outputs, row.id, block)
        statuses[reply.status] += 1
        ok = check(row, reply.calls, paper_era)
        per_category.setdefault(row.category, Counter()).update({"n": 1, "ok": ok})
        if not ok:
            failed[row.id] = reply.reason or "calls do not pass the checker"
    acc = {c: round(100 * v["ok"] / v["n"], 2) for c, v in per_category.items()}

    def mean(names: list[str]) -> float | None:
        values = [acc[c] for c in names if c in acc]
        return round(sum(values) / len(values), 2) if values else None

    atom, single = mean(ATOM), mean(SINGLE_TURN)
    total = sum(v["n"] for v in per_category.values())
    return {
        "benchmark": "ACEBench Normal (atom + single-turn)",
        "scope": f"first {limit} rows of each category (--limit)" if limit else "all rows",
        "block": block,
        "per_category": {
            c: {"correct": v["ok"], "total": v["n"], "accuracy": acc[c]} for c, v in per_category.items()
        },
        "atom": atom,
        "single_turn": single,
        "overall_mean_of_groups": round((atom + single) / 2, 2) if atom is not None and single is not None else None,
        "overall_sample_weighted": round(100 * sum(v["ok"] for v in per_category.values()) / total, 2),
        "reply_status": {status: statuses[status] for status in replies.STATUSES},
        "failed": failed,
        "known_unsatisfiable": KNOWN_UNSATISFIABLE,
        "paper_figure3": FIGURE3,
    }


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--data", required=True, help="ACEBench language folder (data_all/data_en or data_zh)")
    parser.add_argument(
        "--answers",
        choices=["current", "paper-era"],
        default="current",
        help="current: the data and checker as found; paper-era: e6db74b lines + old checker",
    )
    parser.add_argument("--changes", help="changes_since_e6db74b.jsonl (needed for --answers paper-era)")
    parser.add_argument("--categories", nargs="+", choices=CATEGORIES, default=CATEGORIES, help="subset to run")
    openai_generate.add_benchmark_flags(parser, limit_help="only the first N rows of each category (smoke runs)")
    args = parser.parse_args(argv)
    paper_era = args.answers == "paper-era"
    if paper_era and not args.changes:
        parser.error("--answers paper-era needs --changes .../changes_since_e6db74b.jsonl")
    try:
        rows = load(args.data, args.categories, args.changes if paper_era else None)
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"cannot load ACEBench data: {exc}")
    if args.limit:
        rows = [r for c in args.categories for r in [x for x in rows if x.category == c][: args.limit]]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    try:
        outputs, model = openai_generate.benchmark_outputs(
            args, lambda: [(r.id, messages_for(r, args.prompt)) for r in rows], lambda: echo_outputs(rows)
        )
    except openai_generate.IncompleteGeneration as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = score(rows, outputs, paper_era, args.block, args.limit)
    version = (
        "paper-era (e6db74b answers + whitespace-deleting decoder)"
        if paper_era
        else "current (56dd66c data + checker)"
    )
    report.update({"model": model, "data": str(args.data), "data_version": version, "prompt": args.prompt})
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"ACEBench Normal — {model} — {version} — {report['scope']}, block {args.block}")
    for category, value in report["per_category"].items():
        print(f"  {category:<40} {value['correct']:>3}/{value['total']:<3} {value['accuracy']}")
    print(
        f"  atom {report['atom']}  single_turn {report['single_turn']}  mean {report['overall_mean_of_groups']}"
        f"  (sample-weighted {report['overall_sample_weighted']})"
    )
    print("  replies: " + ", ".join(f"{k} {v}" for k, v in report["reply_status"].items()))
    print("  paper Figure 3: " + ", ".join(f"{k} {v}" for k, v in FIGURE3.items()))
    print(f"report: {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
