"""Abstention ("should not call") scorer on BFCL result files, reported apart from BFCL's own figures.

BFCL's irrelevance score counts an entry right when its reply decodes to no call. This scorer reads the same
result files with the handler's decoder (:func:`tool_n1.bfcl_decode.decode_ast`, the run's block policy) and
reports, per reply, one of:

* ``called``: a non-empty call list;
* ``declined_empty``: an explicit ``<tool_call>[]</tool_call>`` (the format Tool-N1 data uses for "no call");
* ``declined_text``: no usable call block at all (plain text, or a block that does not decode);
* ``server_error``: bfcl's ``"Error during inference: …"`` (a failed request; neither).

Figures: abstention on ``irrelevance`` and ``live_irrelevance`` (declined / replies: higher is better), and
over-abstention on the categories where a call is expected (declined / replies on the AST categories and
``live_relevance``: lower is better); their balance, mean(abstention, 1 − over-abstention), is one number per run.
No ``bfcl_eval`` import: it runs on copied result folders.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tool_n1 import bfcl_decode

SHOULD_ABSTAIN = ("irrelevance", "live_irrelevance")
SHOULD_CALL = (
    "simple_python",
    "simple_java",
    "simple_javascript",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "live_relevance",
)
SERVER_ERROR_PREFIX = "Error during inference"


def classify(result: Any, block: str) -> str:
    """One reply's abstention class (see the module docstring)."""
    if isinstance(result, str) and result.startswith(SERVER_ERROR_PREFIX):
        return "server_error"
    try:
        calls = bfcl_decode.decode_ast(result, block)
    except bfcl_decode.DecodeError:
        return "declined_text"
    return "called" if calls else "declined_empty"


def _rate(counts: Counter) -> dict[str, Any]:
    replies = sum(counts[k] for k in ("called", "declined_empty", "declined_text"))
    declined = counts["declined_empty"] + counts["declined_text"]
    return {
        "replies": replies,
        "declined": declined,
        "declined_rate": round(100 * declined / replies, 2) if replies else None,
        **{k: counts[k] for k in ("called", "declined_empty", "declined_text", "server_error")},
    }


def score_results(result_dir: Path, model_dir: str, block: str) -> dict[str, Any]:
    """Per-category counts and the summary figures (percent) from ``result_dir/model_dir``."""
    per_category: dict[str, Counter] = {}
    for path in sorted((result_dir / model_dir).rglob("BFCL_v4_*_result.json")):
        category = path.name.removeprefix("BFCL_v4_").removesuffix("_result.json")
        if category not in SHOULD_ABSTAIN + SHOULD_CALL:
            continue
        counts = per_category.setdefault(category, Counter())
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                counts["unreadable"] += 1
                continue
            counts[classify(entry.get("result") if isinstance(entry, dict) else None, block)] += 1
    abstain = sum((per_category.get(c, Counter()) for c in SHOULD_ABSTAIN), Counter())
    call = sum((per_category.get(c, Counter()) for c in SHOULD_CALL), Counter())
    abstention, over = _rate(abstain), _rate(call)
    balanced = None
    if abstention["declined_rate"] is not None and over["declined_rate"] is not None:
        balanced = round((abstention["declined_rate"] + 100 - over["declined_rate"]) / 2, 2)
    return {
        "block": block,
        "abstention": abstention,
        "over_abstention": over,
        "balanced": balanced,
        "per_category": {c: _rate(v) for c, v in sorted(per_category.items())},
    }


def render(report: dict[str, Any]) -> str:
    a, o = report["abstention"], report["over_abstention"]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    return "\n".join(
        [
            "Abstention (ours; not a BFCL column):",
            f"  declines when no function fits (irrelevance + live_irrelevance): {fmt(a['declined_rate'])} "
            f"({a['declined']}/{a['replies']}; explicit [] {a['declined_empty']}, text {a['declined_text']})",
            f"  declines when a call is expected (AST + live_relevance): {fmt(o['declined_rate'])} "
            f"({o['declined']}/{o['replies']})",
            f"  balanced: {fmt(report['balanced'])}",
        ]
    )


def server_errors(result_dir: Path, model_dir: str) -> dict[str, list[str]]:
    """``{category: [ids]}`` of entries whose result is bfcl's inference-error string (a failed request)."""
    found: dict[str, list[str]] = {}
    for path in sorted((result_dir / model_dir).rglob("BFCL_v4_*_result.json")):
        category = path.name.removeprefix("BFCL_v4_").removesuffix("_result.json")
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            result = entry.get("result") if isinstance(entry, dict) else None
            if isinstance(result, str) and result.startswith(SERVER_ERROR_PREFIX):
                found.setdefault(category, []).append(str(entry.get("id")))
    return found
