"""``run_bfcl.py report``: per-category scores from bfcl-eval's score folder → the paper's table + BFCL's figures.

Reads the header line ``{"accuracy", "correct_count", "total_count"}`` of every
``<score dir>/<model dir>/<group>/BFCL_v4_<category>_score.json`` and, when present, BFCL's own
``data_non_live.csv`` / ``data_live.csv`` / ``data_overall.csv`` (the "official" figures, printed separately).
No ``bfcl_eval`` import: a report can be made anywhere from copied score folders.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import bfcl_abstention
import bfcl_metrics as metrics

SCORE_FILE = re.compile(r"BFCL_v4_(.+)_score\.json")
OFFICIAL_COLUMNS = {  # (csv file, column) → our key
    ("data_non_live.csv", "Non-Live Overall Acc"): "bfcl_non_live",
    ("data_live.csv", "Live Overall Acc"): "bfcl_live",
    ("data_overall.csv", "Overall Acc"): "bfcl_overall_acc",
}


def read_scores(
    score_dir: Path, model_dir: str, server_errors: dict[str, list[str]] | None = None
) -> dict[str, dict[str, float]]:
    """``{category: {"accuracy": percent, "correct": n, "total": n}}`` from the score files' header lines.

    ``server_errors`` (``{category: [ids]}`` of entries whose request failed): such an entry that bfcl counted
    correct (a failed request reads as "no call", right on irrelevance) is counted wrong here, and the count is kept
    under ``server_errors``.
    """
    scores = {}
    for path in sorted((score_dir / model_dir).rglob("BFCL_v4_*_score.json")):
        match = SCORE_FILE.fullmatch(path.name)
        with path.open(encoding="utf-8") as handle:
            header = json.loads(handle.readline())
            failed = {str(json.loads(line).get("id")) for line in handle if line.strip()}
        category = match.group(1)
        correct, total = header.get("correct_count"), header.get("total_count")
        errors = (server_errors or {}).get(category, [])
        passed_errors = sum(i not in failed for i in errors)
        if passed_errors and correct is not None and total:
            correct -= passed_errors
            accuracy = 100.0 * correct / total
        else:
            accuracy = 100.0 * header["accuracy"]
        scores[category] = {"accuracy": accuracy, "correct": correct, "total": total}
        configs = {k: v for k, v in header.items() if isinstance(v, dict) and "accuracy" in v}
        if configs:  # format sensitivity: one accuracy per prompt configuration
            scores[category]["configs"] = {k: 100.0 * v["accuracy"] for k, v in configs.items()}
        if errors:
            scores[category]["server_errors"] = len(errors)
    return scores


def read_official(score_dir: Path, display_name: str) -> dict[str, float | None]:
    """BFCL's own summary figures for ``display_name`` from its CSVs (``None`` where absent or N/A)."""
    official: dict[str, float | None] = dict.fromkeys(OFFICIAL_COLUMNS.values())
    for (file_name, column), key in OFFICIAL_COLUMNS.items():
        path = score_dir / file_name
        if not path.exists():
            continue
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("Model") == display_name and row.get(column, "N/A") not in ("N/A", ""):
                    official[key] = float(row[column].rstrip("%"))
    return official


def build_report(
    label: str,
    scores: dict[str, Any],
    official: dict[str, float | None] | None = None,
    abstention: dict[str, Any] | None = None,
) -> dict:
    """The JSON report: our Table-2 row, per-category scores, (ir)relevance, multi-turn and memory, abstention,
    BFCL's figures, the paper's rows."""
    flat = {k: (v["accuracy"] if isinstance(v, dict) else float(v)) for k, v in scores.items()}
    sizes = {k: v["total"] for k, v in scores.items() if isinstance(v, dict) and k in metrics.LIVE_SIZES}
    return {
        "label": label,
        "paper_metrics": metrics.paper_metrics(flat, sizes),
        "multi_turn": metrics.group_mean(flat, metrics.MULTI_TURN),
        "memory": metrics.group_mean(flat, metrics.MEMORY),
        "format_sensitivity": format_sensitivity(scores),
        "abstention": abstention,
        "categories": scores,
        "relevance": {k: flat.get(k) for k in metrics.EXTRA},
        "bfcl_official": official or {},
        "server_errors": {
            k: v["server_errors"] for k, v in scores.items() if isinstance(v, dict) and v.get("server_errors")
        },
        "paper_table2": metrics.PAPER_TABLE2,
        "notes": [
            "Non-live = mean(Simple, Multiple, Parallel, Parallel Multiple), Simple = mean(python, java, javascript);"
            " Live = size-weighted mean of the 4 live AST categories; Overall = (Non-live + Live) / 2.",
            "bfcl_overall_acc is BFCL V4's 'Overall Acc' (also weights irrelevance, multi-turn and agentic; "
            "categories not evaluated count as 0): not comparable with the paper's Overall.",
            metrics.PAPER_NOTE,
        ],
    }


def format_sensitivity(scores: dict[str, Any]) -> dict | None:
    """BFCL v4's format sensitivity from its score header: overall accuracy, the accuracy per prompt configuration,
    and over the configurations the max − min spread and the sample std (BFCL's ``accuracy_max_delta`` / ``_std``)."""
    entry = scores.get("format_sensitivity")
    if not isinstance(entry, dict) or not entry.get("configs"):
        return None
    values = list(entry["configs"].values())
    _, std = metrics.mean_std(values)
    return {
        "accuracy": entry["accuracy"],
        "configs": entry["configs"],
        "spread": max(values) - min(values),
        "std": std,
        "min": min(values),
        "max": max(values),
    }


def render(report: dict) -> str:
    rows = {f"{report['label']} (ours)": report["paper_metrics"], **report["paper_table2"]}
    lines = ["BFCL, paper metric (Table 2):", metrics.format_table(rows), ""]
    official, relevance = report["bfcl_official"], report["relevance"]
    extra = {
        "BFCL Non-Live Overall Acc": official.get("bfcl_non_live"),
        "BFCL Live Overall Acc": official.get("bfcl_live"),
        "BFCL V4 Overall Acc": official.get("bfcl_overall_acc"),
        "irrelevance": relevance.get("irrelevance"),
        "live_irrelevance": relevance.get("live_irrelevance"),
        "live_relevance": relevance.get("live_relevance"),
    }
    lines.append("BFCL's own figures and (ir)relevance (not part of the paper's columns):")
    lines += [f"  {name:<26} {'-' if value is None else f'{value:.2f}'}" for name, value in extra.items()]
    for title, key, names in (
        ("BFCL multi-turn", "multi_turn", metrics.MULTI_TURN),
        ("BFCL memory", "memory", metrics.MEMORY),
    ):
        group = report.get(key) or {}
        if group.get("scored"):
            cells = ", ".join(f"{n} {group[n]:.2f}" for n in names if group.get(n) is not None)
            lines.append(f"{title} (bfcl-eval's stateful executor): {cells}; mean {group['overall']:.2f}")
    fs = report.get("format_sensitivity")
    if fs:
        lines.append(
            f"BFCL v4 format sensitivity (BFCL's prompts and return formats, {len(fs['configs'])} configurations): "
            f"accuracy {fs['accuracy']:.2f}, max − min {fs['spread']:.2f}, std {fs['std']:.2f}"
        )
        lines += [f"  {value:6.2f}  {config}" for config, value in fs["configs"].items()]
    if report.get("abstention"):
        lines.append(bfcl_abstention.render(report["abstention"]))
    if report.get("server_errors"):
        counts = ", ".join(f"{k} {v}" for k, v in report["server_errors"].items())
        lines.append(f"Failed requests, counted wrong (not model replies): {counts}")
    return "\n".join(lines)


def summary(report: dict) -> dict[str, float | None]:
    """One run's :data:`bfcl_metrics.SUMMARY` columns."""
    paper = report["paper_metrics"]
    return {
        "non_live": paper["non_live"],
        "live": paper["live"],
        "overall": paper["overall"],
        "multi_turn": (report.get("multi_turn") or {}).get("overall"),
        "memory": (report.get("memory") or {}).get("overall"),
        "format_sensitivity": (report.get("format_sensitivity") or {}).get("accuracy"),
        "abstention": (report.get("abstention") or {}).get("balanced"),
        "bfcl_overall_acc": (report.get("bfcl_official") or {}).get("bfcl_overall_acc"),
    }


def aggregate(reports: dict[str, dict], kind: str) -> dict:
    """Several runs of one model (``kind``: "seeds" or "formats") → per-run summaries and, per column, mean, sample
    std, min, max and the max − min spread over the runs that have the column."""
    rows = {label: summary(report) for label, report in reports.items()}
    stats = {}
    for column in metrics.SUMMARY:
        values = [row[column] for row in rows.values() if row[column] is not None]
        if values:
            mean, std = metrics.mean_std(values)
            stats[column] = {
                "mean": mean,
                "std": std,
                "min": min(values),
                "max": max(values),
                "spread": max(values) - min(values),
                "runs": len(values),
            }
    return {"kind": kind, "runs": rows, "stats": stats}


HEADERS_SUMMARY = (
    "Non-live",
    "Live",
    "Overall (paper)",
    "Multi-turn",
    "Memory",
    "Format sens.",
    "Abstention",
    "BFCL V4 Overall",
)


def render_aggregate(result: dict) -> str:
    """The multi-run table: one row per run, then mean ± std (and the max − min spread for formats)."""
    lines = [
        f"BFCL over {len(result['runs'])} runs ({result['kind']}):",
        metrics.format_table(result["runs"], metrics.SUMMARY, HEADERS_SUMMARY),
    ]
    stats = result["stats"]
    cells = [f"{stats[c]['mean']:.2f} ± {stats[c]['std']:.2f}" if c in stats else "-" for c in metrics.SUMMARY]
    lines.append("| mean ± std | " + " | ".join(cells) + " |")
    if result["kind"] == "formats":
        spread = [f"{stats[c]['spread']:.2f}" if c in stats else "-" for c in metrics.SUMMARY]
        lines.append("| max − min | " + " | ".join(spread) + " |")
    return "\n".join(lines)
