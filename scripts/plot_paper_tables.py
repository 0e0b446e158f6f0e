"""Plot the paper's own ablation tables (Tool-N1, arXiv 2505.00024 v2) so they sit beside plots of our runs.

    .venv/rl/bin/python scripts/plot_paper_tables.py [--out assets]

Every number below is typed from the paper's tables (reward granularity Table 4, data composition Table 5,
SFT vs RL Table 3, scaling Fig. 4 read off the plot, ±1); each figure is titled "paper's numbers".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (label, Non-live, Live, Avg)
TABLE_4_REWARD = [
    ("Fine-grained:\nreason partial", 87.83, 79.64, 83.74),
    ("Fine-grained:\nreason + name partial", 88.54, 76.61, 82.58),
    ("Binary\nw/o reason format", 87.63, 76.24, 81.94),
    ("Binary\nw/ reason format", 89.25, 80.38, 84.82),
]
TABLE_5_DATA = [
    ("Raw model", 73.94, 61.14, 67.54),
    ("xLAM-8B", 84.40, 66.90, 75.65),
    ("ToolACE-8B", 87.54, 78.59, 82.57),
    ("xLAM only", 87.77, 76.24, 82.01),
    ("ToolACE only", 87.67, 79.58, 83.63),
    ("ToolACE + xLAM", 89.25, 80.38, 84.82),
]
TABLE_3_SFT_RL = [
    ("No-Reason SFT\n50%", 85.94, 76.09, 81.02),
    ("No-Reason SFT\n100%", 86.40, 76.54, 81.47),
    ("Reason SFT\n50%", 86.40, 76.61, 81.50),
    ("Reason SFT\n100%", 87.54, 77.87, 82.71),
    ("Reason SFT + RL\n50% + 50%", 88.19, 78.16, 83.17),
    ("RL\n50%", 87.12, 78.90, 83.01),
    ("RL\n100%", 88.23, 78.24, 83.24),
]
# size: (Non-live RL, Live RL, Non-live raw, Live raw), read off Fig. 4 (±1)
FIGURE_4_SCALING = {
    "0.5B": (56, 35.5, 53, 38.5),
    "1.5B": (74, 70, 74, 61),
    "3B": (86.5, 75, 74, 61.5),
    "7B": (89, 80.5, 74, 61),
    "14B": (90.5, 81.5, 86, 75.5),
}


def grouped_bars(rows, title: str, path: Path) -> None:
    labels = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(1.6 * len(rows) + 2, 4.2))
    width = 0.27
    for i, (name, color) in enumerate([("Non-live", "#4C72B0"), ("Live", "#DD8452"), ("Avg", "#55A868")]):
        xs = [x + (i - 1) * width for x in range(len(rows))]
        values = [r[i + 1] for r in rows]
        bars = ax.bar(xs, values, width, label=name, color=color)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    low = min(min(r[1:]) for r in rows)
    ax.set_ylim(max(0, low - 8), 100)
    ax.set_ylabel("BFCL accuracy (%)")
    ax.set_title(title + " — paper's numbers", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def scaling(path: Path) -> None:
    sizes = list(FIGURE_4_SCALING)
    fig, ax = plt.subplots(figsize=(6, 4))
    for column, label, style in [
        (0, "Non-live, Tool-N1 (RL)", "-o"),
        (1, "Live, Tool-N1 (RL)", "-s"),
        (2, "Non-live, raw Instruct", "--o"),
        (3, "Live, raw Instruct", "--s"),
    ]:
        ax.plot(sizes, [FIGURE_4_SCALING[s][column] for s in sizes], style, label=label)
    ax.set_xlabel("Qwen2.5-Instruct size")
    ax.set_ylabel("BFCL accuracy (%)")
    ax.set_title("Scaling (Fig. 4, read off the plot ±1) — paper's numbers", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "assets",
        help="folder for the PNG files (default: assets/)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    grouped_bars(TABLE_4_REWARD, "Reward granularity, Tool-N1-7B (Table 4)", args.out / "paper_reward_ablation.png")
    grouped_bars(TABLE_5_DATA, "Data composition, 7B (Table 5)", args.out / "paper_data_composition.png")
    grouped_bars(TABLE_3_SFT_RL, "SFT vs RL on 5,518 ToolACE samples (Table 3)", args.out / "paper_sft_vs_rl.png")
    scaling(args.out / "paper_scaling.png")
    print(f"wrote 4 figures to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
