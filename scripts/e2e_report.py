"""``report.md`` and plots for an end-to-end run folder (used by ``run_e2e.py``; also runnable on its own).

    .venv/rl/bin/python scripts/e2e_report.py outputs/e2e-default

Table: base, SFT and SFT+GRPO on the held-out prompts (mean reward, format rate, parse rate, exact-match rate, from
``eval/<model>/heldout/report.json``) and on the BFCL slice (correct / total over its categories, from
``eval/<model>/bfcl/report.json``). Plots from the GRPO log ``grpo/metrics.jsonl``: reward and format rate per step,
completion length, KL to the reference model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

MODELS = {"base": "base model", "sft": "SFT (LoRA, merged)", "sft_grpo": "SFT + GRPO"}
PLOTS = [
    (
        "grpo_reward.png",
        [("reward_mean", "mean reward"), ("format_rate", "format rate"), ("exact_match_rate", "exact-match rate")],
        "GRPO training: reward per step",
    ),
    ("grpo_length.png", [("completion_length", "mean completion length (tokens)")], "GRPO: response length"),
    ("grpo_kl.png", [("kl", "KL to the reference model")], "GRPO: KL"),
]


SCALE_NOTE = {
    "default": "Toy scale: a 135M model, template reasoning instead of a teacher, a few optimizer steps on a CPU. "
    "The numbers show that every stage runs and how it moves the metrics, not the paper's results.",
    "tiny": "Tiny profile: a randomly initialised 30k-parameter model; all zeros are expected. It checks that every "
    "stage runs end to end (CI runs it as a test).",
}
GRPO_KEYS = [
    "data.train_batch_size",
    "actor_rollout_ref.rollout.n",
    "actor_rollout_ref.actor.optim.lr",
    "actor_rollout_ref.rollout.temperature",
    "actor_rollout_ref.actor.kl_loss_coef",
    "data.max_response_length",
]


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def bfcl_slice(report: dict | None) -> str:
    if not report:
        return "not run"
    cats = report.get("categories", {})
    correct = sum(v.get("correct") or 0 for v in cats.values())
    total = sum(v.get("total") or 0 for v in cats.values())
    return f"{100 * correct / total:.1f} % ({correct}/{total})" if total else "no items"


def plot(metrics: list[dict], out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, series, title in PLOTS:
        present = [(key, label) for key, label in series if any(key in m for m in metrics)]
        if not present:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        for key, label in present:
            points = [(m["step"], m[key]) for m in metrics if m.get(key) is not None]
            ax.plot([p[0] for p in points], [p[1] for p in points], "-o", markersize=3, label=label)
        ax.set_xlabel("GRPO training step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        written.append(name)
    return written


def write(root: Path, profile: str, timings: dict[str, float]) -> Path:
    rows = []
    for key, label in MODELS.items():
        held = read_json(root / "eval" / key / "heldout" / "report.json")
        overall = (held or {}).get("all")
        cells = (
            [f"{overall[k]:.3f}" for k in ("score", "format_ok", "call_parsed", "calls_match")]
            if overall
            else ["not run"] * 4
        )
        n = str(overall["n"]) if overall else "-"
        rows.append(
            f"| {label} | {n} | "
            + " | ".join(cells)
            + f" | {bfcl_slice(read_json(root / 'eval' / key / 'bfcl' / 'report.json'))} |"
        )
    metrics_path = root / "grpo" / "metrics.jsonl"
    metrics = (
        [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
        if (metrics_path.exists())
        else []
    )
    plots = plot(metrics, root) if metrics else []
    values = (read_json(root / "grpo" / "resolved_config.json") or {}).get("values", {})
    settings = {k: values[k] for k in GRPO_KEYS if k in values}
    lines = [
        f"# Tool-N1 end-to-end run ({profile} profile)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"stage wall times (s): {json.dumps(timings)}.",
        "",
        "Held-out prompts (a separate seeded draw of the demo data) scored with the training reward "
        "(`binary`, faithful); BFCL slice through our handler and bfcl-eval's checker.",
        "",
        "| model | held-out n | reward | format rate | parse rate | exact match | BFCL slice |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"GRPO: {len(metrics)} steps logged; " + ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in settings.items()),
        "",
        *[f"![{name}]({name})" for name in plots],
        "",
        SCALE_NOTE.get(profile, SCALE_NOTE["default"]),
    ]
    out = root / "report.md"
    out.write_text("\n".join(lines) + "\n")
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
