"""Seconds per GRPO step on one CPU machine: verl's ``main_ppo`` (the paper's trainer, vLLM CPU rollouts) against the
TRL backend (HF ``generate`` rollouts), full weights and LoRA, on the same model, data and settings; prints a table.

    bash scripts/setup.sh rl rl-vllm
    .venv/rl/bin/python bench/bench_grpo_trainers.py --model outputs/e2e-default/sft/merged \\
        --data-dir outputs/e2e-default/data/verl_train --steps 5

Every arm runs ``--steps`` training steps of the same recipe overrides (``--set``, verl's dotted names; defaults: the
main job's default GRPO profile: 4 prompts x 4 rollouts, 96 response tokens, lr 1e-5): ``trl`` = ``verl/train_trl.py``
(step time from its ``metrics.jsonl``), ``trl-lora`` = the same with ``actor_rollout_ref.model.lora_rank`` (peft
adapters, merged at save), ``verl`` = ``bash verl/train_qwen.sh --cpu`` (``timing_s/step`` from verl's console
metrics; Ray, FSDP2 over gloo, vLLM's CPU build). The first step carries warm-up (allocations, vLLM's first
batches), so the table shows it apart from the median of the others, and the start-up (wall minus steps: process
start, model load, Ray, vLLM engine) apart again. Each arm's log is in ``--output-dir/<arm>.log``; the table and the
per-step numbers in ``--output-dir/results.json``. Run it on an idle machine: the figures are wall-clock times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from tool_n1.verl_console import parse_step_metrics  # noqa: E402

ARMS = ("trl", "trl-lora", "verl")
DEFAULT_SET = [
    "data.train_batch_size=4",
    "actor_rollout_ref.rollout.n=4",
    "data.max_response_length=96",
    "data.max_prompt_length=1024",
    "actor_rollout_ref.actor.optim.lr=1e-5",
    "actor_rollout_ref.actor.ppo_mini_batch_size=4",
    "actor_rollout_ref.model.enable_gradient_checkpointing=false",
]
LORA_SET = ["actor_rollout_ref.model.lora_rank=16", "actor_rollout_ref.model.lora_alpha=32"]


def run_arm(arm: str, args: argparse.Namespace) -> dict:
    """One arm: its command, then per-step seconds, rewards and grad norms read from what the trainer wrote."""
    out = args.output_dir / arm
    log_path = args.output_dir / f"{arm}.log"
    common = [*DEFAULT_SET, *args.set]
    env = dict(os.environ)
    if arm.startswith("trl"):
        command = [
            str(REPO / ".venv" / "rl" / "bin" / "python"),
            str(REPO / "verl" / "train_trl.py"),
            "--model",
            str(args.model),
            "--train-file",
            str(args.data_dir / "train.parquet"),
            "--output-dir",
            str(out),
            "--device",
            "cpu",
            "--max-steps",
            str(args.steps),
            *common,
            "trainer.save_freq=-1",
            "trainer.test_freq=-1",
            *(LORA_SET if arm == "trl-lora" else []),
        ]
    else:
        command = [
            "bash",
            str(REPO / "verl" / "train_qwen.sh"),
            "--cpu",
            *common,
            f"trainer.total_training_steps={args.steps}",
            "trainer.save_freq=-1",
            "trainer.test_freq=-1",
            "trainer.val_before_train=false",
            "trainer.experiment_name=bench_grpo_trainers",
        ]
        env.update(
            MODEL_PATH=str(args.model),
            DATA_DIR=str(args.data_dir),
            OUTPUT_DIR=str(out),
            CKPT_DIR=str(out / "ckpt"),
            N_GPUS_PER_NODE="1",
            ROLLOUT_TP="1",
            RAY_DEDUP_LOGS="0",
        )
        env.pop("RAY_ADDRESS", None)
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        code = subprocess.run(
            ["timeout", "-k", "30", str(args.timeout), *command], stdout=log, stderr=subprocess.STDOUT, env=env
        ).returncode
    wall = time.monotonic() - started
    if arm.startswith("trl"):
        metrics_file = out / "metrics.jsonl"
        rows = [json.loads(line) for line in metrics_file.read_text().splitlines()] if metrics_file.exists() else []
        steps = [
            {"seconds": r["step_time"], "reward": r["reward_mean"], "grad_norm": r.get("grad_norm")} for r in rows
        ]
    else:
        parsed = parse_step_metrics(log_path.read_text(encoding="utf-8", errors="replace"))
        steps = [
            {
                "seconds": parsed[s].get("timing_s/step"),
                "reward": parsed[s].get("critic/score/mean"),
                "grad_norm": parsed[s].get("actor/grad_norm"),
                "generation_seconds": parsed[s].get("timing_s/gen"),
            }
            for s in sorted(parsed)
            if "timing_s/step" in parsed[s]
        ]
    seconds = [s["seconds"] for s in steps if s["seconds"] is not None]
    return {
        "arm": arm,
        "exit_code": code,
        "wall_s": round(wall, 1),
        "steps_done": len(seconds),
        "first_step_s": round(seconds[0], 1) if seconds else None,
        "median_later_step_s": round(statistics.median(seconds[1:]), 1) if len(seconds) > 1 else None,
        "startup_s": round(wall - sum(seconds), 1) if seconds else None,
        "mean_reward": round(statistics.fmean(s["reward"] for s in steps), 3) if steps else None,
        "steps": steps,
        "command": command,
        "log": str(log_path),
    }


def table(results: list[dict]) -> str:
    head = "| arm | exit | steps | first step (s) | median later step (s) | start-up (s) | wall (s) | mean reward |"
    lines = [head, "|" + "---|" * 8]
    for r in results:
        cells = [r["arm"], r["exit_code"], r["steps_done"], r["first_step_s"], r["median_later_step_s"]]
        cells += [r["startup_s"], r["wall_s"], r["mean_reward"]]
        lines.append("| " + " | ".join("–" if c is None else str(c) for c in cells) + " |")
    base = next((r for r in results if r["arm"] == "trl" and r["median_later_step_s"]), None)
    if base:
        lines.append("")
        for r in results:
            if r["median_later_step_s"]:
                lines.append(f"{r['arm']}: {r['median_later_step_s'] / base['median_later_step_s']:.2f}x trl per step")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--model", type=Path, required=True, help="local Hugging Face model folder (the policy)")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder with the verl train.parquet/test.parquet")
    parser.add_argument("--steps", type=int, default=5, help="GRPO steps per arm (default 5)")
    parser.add_argument(
        "--arms", default=",".join(ARMS), help=f"comma list of arms to run, in order (default {','.join(ARMS)})"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra verl-style override for every arm"
    )
    parser.add_argument(
        "--output-dir", type=Path, default=REPO / "outputs" / "bench_grpo_trainers", help="logs and results.json"
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds before an arm is killed (default 3600)")
    args = parser.parse_args(argv)
    arms = [a for a in args.arms.split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"--arms: unknown {unknown}; choose from {list(ARMS)}")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    print(f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d')}")
    results = []
    for index, arm in enumerate(arms, 1):
        print(f"[{index}/{len(arms)}] {arm}: running {args.steps} steps (log {args.output_dir / (arm + '.log')})")
        results.append(run_arm(arm, args))
        print(f"    exit {results[-1]['exit_code']}, {results[-1]['wall_s']} s, load {os.getloadavg()[0]:.2f}")
    text = table(results)
    print(text)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d")}
    report.update(results=results, table=text)
    (args.output_dir / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(r["exit_code"] == 0 and r["steps_done"] == args.steps for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
