"""Per-step metric files of the TRL backend: ``metrics.jsonl`` / ``val_metrics.jsonl`` written by a Trainer
callback (one line per training step, plus a console line), and trimmed on ``--resume`` to the checkpoint's step."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
VAL_METRICS_FILE = "val_metrics.jsonl"

#: metrics.jsonl column -> TRL log key (first present wins).
METRIC_KEYS = {
    "reward_mean": ("reward",),
    "reward_std": ("reward_std",),
    "format_rate": ("tool_n1/format_ok",),
    "exact_match_rate": ("tool_n1/calls_match",),
    "call_parsed_rate": ("tool_n1/call_parsed",),
    "names_match_rate": ("tool_n1/names_match",),
    "parse_error_rate": ("tool_n1/parse_error",),
    "completion_length": ("completions/mean_length",),
    "completion_clipped_ratio": ("completions/clipped_ratio",),
    "kl": ("kl",),
    "entropy": ("entropy",),
    "loss": ("loss",),
    "grad_norm": ("grad_norm",),
    "learning_rate": ("learning_rate",),
    "frac_reward_zero_std": ("frac_reward_zero_std",),
    "step_time": ("step_time",),
    "filter_groups_gen_batches": ("filter_groups/num_gen_batches",),
    "filter_groups_zero_std_kept": ("filter_groups/zero_std_kept",),
}


def _number(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def make_metrics_callback(output_dir: Path, steps_per_step: int, total_steps: int | None):
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        """One JSON line per training step in ``metrics.jsonl`` (eval logs: ``val_metrics.jsonl``) + a console line."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or not state.is_world_process_zero:
                return
            eval_log = any(key.startswith("eval_") for key in logs)
            if not eval_log and "reward" not in logs:
                return  # the end-of-training summary (train_runtime, ...)
            prefix = "eval_" if eval_log else ""
            row = {"step": state.global_step // steps_per_step, "global_step": state.global_step}
            row["epoch"] = _number(logs.get("epoch", state.epoch))
            for name, keys in METRIC_KEYS.items():
                for key in keys:
                    if prefix + key in logs:
                        row[name] = _number(logs[prefix + key])
                        break
            row["raw"] = {key: _number(value) for key, value in logs.items()}
            target = output_dir / (VAL_METRICS_FILE if eval_log else METRICS_FILE)
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
            fmt = lambda v: "-" if v is None else f"{v:.4g}"  # noqa: E731
            of = f"/{total_steps}" if total_steps else ""
            print(
                f"[{'val' if eval_log else 'train'}] step {row['step']}{of} reward {fmt(row.get('reward_mean'))} "
                f"format {fmt(row.get('format_rate'))} exact {fmt(row.get('exact_match_rate'))} "
                f"len {fmt(row.get('completion_length'))} kl {fmt(row.get('kl'))}",
                flush=True,
            )

    return MetricsCallback()


def truncate_metrics(output_dir: Path, last_global_step: int) -> None:
    """Keep only lines of optimizer steps <= ``last_global_step`` (0: empty the files)."""
    for name in (METRICS_FILE, VAL_METRICS_FILE):
        path = output_dir / name
        if not path.exists():
            continue
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            if row.get("global_step", 0) <= last_global_step:
                kept.append(line)
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def checkpoint_step(checkpoint: str) -> int:
    state = Path(checkpoint) / "trainer_state.json"
    return int(json.loads(state.read_text(encoding="utf-8"))["global_step"])
