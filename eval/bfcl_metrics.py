"""The paper's BFCL numbers (Table 2) from per-category accuracies, and the paper's own rows.

* Non-live = unweighted mean of Simple, Multiple, Parallel, Parallel Multiple; Simple = unweighted mean of
  simple_python / simple_java / simple_javascript (or the given aggregate ``simple``).
* Live = the 4 live AST categories weighted by their sizes (258 / 1053 / 16 / 24 unless the score files say).
* Overall = (Non-live + Live) / 2 — not BFCL's "Overall Acc" (which also weights irrelevance, multi-turn, agentic).

>>> row = paper_metrics(PAPER_TABLE2["Tool-N1-14B"])
>>> round(row["non_live"], 2), round(row["live"], 2), round(row["overall"], 2)
(90.52, 81.42, 85.97)
"""

from __future__ import annotations

from collections.abc import Mapping

LIVE_SIZES = {"live_simple": 258, "live_multiple": 1053, "live_parallel": 16, "live_parallel_multiple": 24}
SIMPLE_PARTS = ("simple_python", "simple_java", "simple_javascript")
NL_COLUMNS = ("simple", "multiple", "parallel", "parallel_multiple")
COLUMNS = (*NL_COLUMNS, *LIVE_SIZES, "non_live", "live", "overall")
HEADERS = (
    "NL Simple",
    "NL Multiple",
    "NL Parallel",
    "NL Par.Mult.",
    "L Simple",
    "L Multiple",
    "L Parallel",
    "L Par.Mult.",
    "Non-live",
    "Live",
    "Overall",
)
EXTRA = ("irrelevance", "live_irrelevance", "live_relevance")
MULTI_TURN = ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context")
MEMORY = ("memory_kv", "memory_vector", "memory_rec_sum")
#: The one-number-per-run columns of a multi-run (seeds / formats) table.
SUMMARY = (
    "non_live",
    "live",
    "overall",
    "multi_turn",
    "memory",
    "format_sensitivity",
    "abstention",
    "bfcl_overall_acc",
)


def _row(values: list[float]) -> dict[str, float]:
    return dict(zip(COLUMNS, values, strict=True))


#: Paper Table 2 (arXiv v2, BFCL "last updated 2025-04-13"), percentages as printed.
PAPER_TABLE2 = {
    "Tool-N1-7B": _row([77.00, 95.00, 94.50, 90.50, 82.17, 80.44, 62.50, 70.83, 89.25, 80.38, 84.82]),
    "Tool-N1-14B": _row([80.58, 96.00, 93.50, 92.00, 84.10, 81.10, 81.25, 66.67, 90.52, 81.42, 85.97]),
    "GPT-4o": _row([79.42, 95.50, 94.00, 83.50, 84.88, 79.77, 87.50, 75.00, 88.10, 79.83, 83.97]),
    "Qwen2.5-7B-Inst": _row([75.33, 94.50, 91.50, 84.50, 76.74, 74.93, 62.50, 70.83, 86.46, 67.44, 76.95]),
}
PAPER_NOTE = (
    "Paper rows as printed. Their Live column equals the size-weighted AST mean only for the Tool-N1 rows; the "
    "baselines' Live seems copied from the v3 leaderboard's 'Live Overall Acc' (which included live "
    "(ir)relevance), e.g. Qwen2.5-7B-Inst weighted AST = 75.06, printed 67.44."
)


def paper_metrics(scores: Mapping[str, float], sizes: Mapping[str, int] | None = None) -> dict[str, float | None]:
    """Table-2 columns (percent) from per-category accuracies in percent.

    ``scores`` has ``simple`` or all of ``simple_python``/``simple_java``/``simple_javascript``, plus ``multiple``,
    ``parallel``, ``parallel_multiple`` and the 4 live AST categories; ``sizes`` overrides :data:`LIVE_SIZES`. A
    column whose inputs are missing is ``None`` (and so is every summary built on it).
    """
    if all(part in scores for part in SIMPLE_PARTS):
        simple = sum(scores[part] for part in SIMPLE_PARTS) / 3
    else:
        simple = scores.get("simple")
    sizes = {**LIVE_SIZES, **(sizes or {})}
    row: dict[str, float | None] = {"simple": simple, **{c: scores.get(c) for c in (*NL_COLUMNS[1:], *LIVE_SIZES)}}
    nl = [row[c] for c in NL_COLUMNS]
    row["non_live"] = None if None in nl else sum(nl) / 4
    live = [row[c] for c in LIVE_SIZES]
    total = sum(sizes[c] for c in LIVE_SIZES)
    row["live"] = None if None in live else sum(row[c] * sizes[c] for c in LIVE_SIZES) / total
    row["overall"] = None if None in (row["non_live"], row["live"]) else (row["non_live"] + row["live"]) / 2
    return row


def format_table(rows: Mapping[str, Mapping[str, float | None]], columns=COLUMNS, headers=HEADERS) -> str:
    """A Markdown table, one row per name, values with 2 decimals (``-`` when absent)."""
    lines = ["| model | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
    for name, row in rows.items():
        cells = [f"{row[c]:.2f}" if row.get(c) is not None else "-" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def group_mean(scores: Mapping[str, float], names: tuple[str, ...]) -> dict[str, float | None]:
    """Each category of ``names`` that was scored, plus ``overall`` = their unweighted mean (BFCL's multi-turn and
    memory summaries are unweighted means of their categories); ``None`` when none was scored."""
    row: dict[str, float | None] = {name: scores.get(name) for name in names}
    present = [v for v in row.values() if v is not None]
    row["overall"] = sum(present) / len(present) if present else None
    row["scored"] = len(present)
    return row


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0.0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
