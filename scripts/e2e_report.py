"""``report.md`` and training curves for an end-to-end run folder (used by ``run_e2e.py``; also runnable on its own).

    .venv/rl/bin/python scripts/e2e_report.py outputs/e2e-default [--profile default]

Table: every evaluated model (base, SFT, SFT+GRPO, GRPO from the base model, the lr = 0 control) on the held-out
prompts, from ``eval/<model>/heldout/{report.json,scores.jsonl}``: exact-match and format rate over the answered
items with 95 % Wilson intervals, the mean reward, unanswered requests counted apart, and the BFCL slice
(``eval/<model>/bfcl/report.json``), and the robustness slice (``robustness/<model>/{seeds,formats}.json``: mean ±
std over sampled runs and prompt formats). Paired comparisons on the same prompts: each GRPO model against the model it
started from (and SFT against the base model), an exact McNemar test on exact match, stated as significant or not at
the 5 % level. Curves per training step from ``<grpo stage>/metrics.jsonl`` (``grpo_curves.png``): reward, format
rate, exact match, share of zero-variance groups, KL, response length. Wall time per stage (``timings.json``), the
load average at each stage's end (``load.json``), machine and date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from tool_n1.stats import mcnemar_exact, wilson_interval

MODELS = {
    "base": "base model",
    "sft": "SFT (LoRA, merged)",
    "sft_grpo": "SFT + GRPO",
    "base_grpo": "GRPO from the base model",
    "sft_grpo_lr0": "SFT + GRPO at lr = 0 (control)",
}
#: (after, before): a GRPO model against the model it started from; SFT against the base for context
COMPARISONS = [("sft_grpo", "sft"), ("base_grpo", "base"), ("sft", "base")]
RUNS = {"grpo": "SFT + GRPO", "grpo_base": "GRPO from base"}
CURVES = [
    ("reward_mean", "mean reward"),
    ("format_rate", "format rate"),
    ("exact_match_rate", "exact-match rate"),
    ("frac_reward_zero_std", "share of zero-variance groups"),
    ("kl", "KL to the reference model"),
    ("completion_length", "response length (tokens)"),
]
ALPHA = 0.05
SCALE_NOTE = {
    "default": "Toy scale: a 135M model, template reasoning instead of a teacher, a few GRPO steps on a CPU. The "
    "numbers show what this budget buys and whether it is distinguishable from noise, not the paper's results.",
    "tiny": "Tiny profile: a randomly initialised model; zeros are expected. It checks that every stage runs end to "
    "end and that the lr = 0 control reproduces its starting model exactly (CI runs it as a test).",
}
GRPO_KEYS = [
    "data.train_batch_size",
    "actor_rollout_ref.rollout.n",
    "actor_rollout_ref.actor.optim.lr",
    "actor_rollout_ref.rollout.temperature",
    "actor_rollout_ref.actor.kl_loss_coef",
    "data.max_response_length",
    "algorithm.filter_groups.enable",
]


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def bfcl_slice(report: dict | None) -> str:
    if not report:
        return "not run"
    cats = report.get("categories", {})
    correct = sum(v.get("correct") or 0 for v in cats.values())
    total = sum(v.get("total") or 0 for v in cats.values())
    return f"{100 * correct / total:.1f} % ({correct}/{total})" if total else "no items"


def rate_cell(items: list[dict], key: str) -> str:
    answered = [item for item in items if item.get("answered")]
    hits = sum(1 for item in answered if item.get(key))
    if not answered:
        return "-"
    low, high = wilson_interval(hits, len(answered))
    return f"{hits / len(answered):.3f} [{low:.3f}, {high:.3f}]"


def model_rows(root: Path) -> tuple[list[str], dict[str, list[dict]]]:
    rows, scores = [], {}
    for key, label in MODELS.items():
        folder = root / "eval" / key
        items = read_jsonl(folder / "heldout" / "scores.jsonl")
        if not items:
            continue
        scores[key] = items
        answered = [i for i in items if i.get("answered")]
        reward = sum(i["score"] for i in answered) / len(answered) if answered else 0.0
        bfcl = bfcl_slice(read_json(folder / "bfcl" / "report.json"))
        rows.append(
            f"| {label} | {len(items)} | {len(items) - len(answered)} | {rate_cell(items, 'calls_match')} | "
            f"{rate_cell(items, 'format_ok')} | {reward:.3f} | {bfcl} |"
        )
    return rows, scores


def comparison(after: list[dict], before: list[dict]) -> dict:
    """Exact McNemar test on exact match over the items both models answered."""
    mine = {i["id"]: i for i in after if i.get("answered")}
    theirs = {i["id"]: i for i in before if i.get("answered")}
    ids = sorted(set(mine) & set(theirs))
    return mcnemar_exact([bool(theirs[i]["calls_match"]) for i in ids], [bool(mine[i]["calls_match"]) for i in ids])


def comparison_lines(scores: dict[str, list[dict]]) -> tuple[list[str], list[str], dict]:
    table, sentences, results = [], [], {}
    for after, before in COMPARISONS:
        if after not in scores or before not in scores:
            continue
        result = comparison(scores[after], scores[before])
        results[f"{after}_vs_{before}"] = result
        significant = result["p_value"] < ALPHA
        verdict = "yes" if significant else "no"
        table.append(
            f"| {MODELS[after]} vs {MODELS[before]} | {result['n']} | {result['rate_before']:.3f} | "
            f"{result['rate_after']:.3f} | {result['difference']:+.3f} | {result['b']} | {result['c']} | "
            f"{result['p_value']:.3g} | {verdict} |"
        )
        direction = "better" if result["difference"] > 0 else "worse" if result["difference"] < 0 else "no different"
        sentences.append(
            f"- **{MODELS[after]} vs {MODELS[before]}**: exact match {result['rate_before']:.3f} → "
            f"{result['rate_after']:.3f} ({result['difference']:+.3f}; {result['c']} prompts gained, {result['b']} "
            f"lost), exact McNemar p = {result['p_value']:.3g}: "
            + (
                f"{direction}, and the difference **is significant** at the 5 % level."
                if significant
                else f"the difference is **not significant** at the 5 % level ({direction} on this draw)."
            )
        )
    return table, sentences, results


def plot(runs: dict[str, list[dict]], out: Path) -> bool:
    """One figure, a panel per curve, a line per GRPO run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(12, 6.2))
    drawn = False
    for ax, (key, label) in zip(axes.flat, CURVES, strict=True):
        for stage, metrics in runs.items():
            points = [(m["step"], m[key]) for m in metrics if m.get(key) is not None]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], "-o", markersize=2.5, label=RUNS[stage])
                drawn = True
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("GRPO training step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("GRPO training curves (rollouts at the training temperature)", fontsize=10)
    fig.tight_layout()
    if drawn:
        fig.savefig(out, dpi=100)
    plt.close(fig)
    return drawn


#: run_bfcl.py report's summary columns shown in the robustness table
ROBUSTNESS_COLUMNS = [
    ("non_live", "Non-live"),
    ("live", "Live"),
    ("multi_turn", "Multi-turn"),
    ("abstention", "Abstention (balanced)"),
    ("bfcl_overall_acc", "BFCL V4 Overall"),
]


def robustness_lines(root: Path) -> list[str]:
    """The BFCL robustness slice per model: mean ± std over sampled seeds, and over prompt formats with the
    max − min spread (``robustness/<model>/{seeds,formats}.json`` from ``run_bfcl.py report``)."""
    rows = []
    for key, label in MODELS.items():
        for kind in ("seeds", "formats"):
            report = read_json(root / "robustness" / key / f"{kind}.json")
            if not report:
                continue
            stats, runs = report.get("stats", {}), report.get("runs", {})
            cells = []
            for column, _ in ROBUSTNESS_COLUMNS:
                stat = stats.get(column)
                if not stat:
                    cells.append("-")
                    continue
                spread = f" (spread {stat['spread']:.2f})" if kind == "formats" else ""
                cells.append(f"{stat['mean']:.2f} ± {stat['std']:.2f}{spread}")
            what = f"{len(runs)} sampled runs" if kind == "seeds" else "formats " + ", ".join(sorted(runs))
            rows.append(f"| {label} | {what} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    head = " | ".join(name for _, name in ROBUSTNESS_COLUMNS)
    return [
        "Beyond the paper (BFCL slice with AST, should-not-call and multi-turn items; `eval/run_bfcl.py report`, "
        "bfcl-eval's checkers and stateful executor behind our execution guard): mean ± sample std over sampled runs "
        "(temperature 0.7) and over greedy runs under each prompt format, with the max − min spread. Percentages.",
        "",
        f"| model | runs | {head} |",
        "|---" * (len(ROBUSTNESS_COLUMNS) + 2) + "|",
        *rows,
        "",
    ]


def machine_line(timings: dict, load: dict) -> str:
    try:
        import subprocess

        cpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "")
    except (OSError, subprocess.SubprocessError):
        model = ""
    total = sum(timings.values())
    return (
        f"Machine: {platform.machine()} {model}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"report written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Wall time per stage (s): "
        f"{json.dumps(timings)}, total {total:.0f} s ({total / 60:.1f} min). 1-minute load average at each "
        f"stage's end: {json.dumps(load)} (above the core count = the machine was shared)."
    )


def write(root: Path, profile: str, timings: dict[str, float]) -> Path:
    rows, scores = model_rows(root)
    table, sentences, results = comparison_lines(scores)
    runs = {stage: read_jsonl(root / stage / "metrics.jsonl") for stage in RUNS}
    runs = {stage: metrics for stage, metrics in runs.items() if metrics}
    plotted = plot(runs, root / "grpo_curves.png") if runs else False
    settings = []
    for stage, label in RUNS.items():
        resolved = read_json(root / stage / "resolved_config.json") or {}
        values = resolved.get("values", {})
        if values:
            picked = ", ".join(f"{k.split('.', 1)[-1]}={values[k]}" for k in GRPO_KEYS if k in values)
            steps = len(runs.get(stage, []))
            runtime = resolved.get("train_runtime_s")
            per_step = f", {runtime / steps:.0f} s per step" if runtime and steps else ""
            settings.append(f"- {label}: {steps} steps{per_step}; {picked}")
    control = read_json(root / "eval" / "control.json")
    control_lines = []
    if control:
        verdict = "exact" if control["identical"] == control["n"] else "FAILED"
        control_lines = [
            f"lr = 0 control ({verdict}): {control['identical']}/{control['n']} held-out greedy outputs identical to "
            f"the SFT model's; largest weight difference {control['weights_max_abs_difference']}.",
            "",
        ]
    unanswered = sum(1 for items in scores.values() for item in items if not item.get("answered"))
    serving = []
    for key in scores:
        info = read_json(root / "eval" / key / "serving.json")
        if info:
            fallback = f"; fallback: {info['fallback']}" if info.get("fallback") else ""
            serving.append(
                f"{key}: {info.get('engine')} (up in {info.get('startup_s')} s, "
                f"{info.get('total_s')} s in all{fallback})"
            )
    lines = [
        f"# Tool-N1 end-to-end run ({profile} profile)",
        "",
        machine_line(timings, read_json(root / "load.json") or {}),
        "",
        "Held-out prompts: a separate seeded draw of the demo data (never trained on), scored with the training "
        "reward (`binary`, faithful), greedy decoding. Rates are over answered requests, with 95 % Wilson intervals; "
        f"unanswered requests are counted apart (this run: {unanswered}). BFCL slice through our handler and "
        "bfcl-eval's checker.",
        "",
        "| model | held-out n | unanswered | exact match [95 % CI] | format rate [95 % CI] | reward | BFCL slice |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Paired comparisons on the same held-out prompts (exact match; b = right before and wrong after, c = wrong "
        "before and right after; two-sided exact McNemar test):",
        "",
        "| comparison | paired n | before | after | difference | b | c | p | p < 0.05 |",
        "|---|---|---|---|---|---|---|---|---|",
        *table,
        "",
        *sentences,
        "",
        *control_lines,
        *robustness_lines(root),
        *([f"Evaluation servers: {'; '.join(serving)}.", ""] if serving else []),
        "GRPO settings:",
        *settings,
        "",
        *(["![GRPO training curves](grpo_curves.png)", ""] if plotted else []),
        SCALE_NOTE.get(profile, SCALE_NOTE["default"]),
    ]
    (root / "comparisons.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    out = root / "report.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("run_dir", type=Path, help="the run folder of scripts/run_e2e.py")
    parser.add_argument("--profile", default="default", help="profile name shown in the title (default: default)")
    args = parser.parse_args(argv)
    timings = read_json(args.run_dir / "timings.json") or {}
    print(f"wrote {write(args.run_dir, args.profile, timings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
