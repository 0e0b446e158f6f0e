"""Single-machine GRPO backend: TRL's ``GRPOTrainer`` on the verl parquet, with the Tool-N1 reward and verl's names.

For users without a GPU cluster (CPU, or one GPU; no vLLM). verl (``train_qwen.sh``) stays the cluster path and the
paper's; this backend reads the same ``train.parquet`` / ``test.parquet``, scores with the same
``tool_n1.reward.compute_score`` and takes its hyper-parameters from the same config file and the same dotted names
(``verl/config/tool_n1_grpo.yaml``; :data:`DEFAULTS` below when the file is absent), so ``rollout.n=4`` means the
same thing on both::

    .venv/rl/bin/python verl/train_trl.py --model /models/Qwen2.5-0.5B-Instruct \\
        --train-file data/verl/train.parquet --val-file data/verl/test.parquet --output-dir outputs/grpo_trl \\
        data.train_batch_size=8 actor_rollout_ref.rollout.n=4 data.max_response_length=256 --max-steps 20
    .venv/rl/bin/python verl/train_trl.py ... --resume          # continue from the last checkpoint in --output-dir

Mapping (``B`` = data.train_batch_size prompts per training step, ``n`` = rollout.n, ``M`` = ppo_mini_batch_size
prompts per optimizer step, clamped to ``B``; ``k = B / M`` optimizer steps per training step; ``W`` = processes)

=================================================  ===========================================================
verl name (paper Table 6 value)                    TRL ``GRPOConfig`` field
=================================================  ===========================================================
actor_rollout_ref.rollout.n (5)                    ``num_generations`` = n
data.train_batch_size (1024)                       ``generation_batch_size`` = B*n completions (TRL counts
                                                   completions, not prompts) = ``per_device_train_batch_size``
                                                   * W * ``steps_per_generation``
actor.ppo_mini_batch_size (256, verl default)      ``steps_per_generation`` = k * ``gradient_accumulation_steps``;
                                                   ``gradient_accumulation_steps`` = M*n / (W * micro)
actor.ppo_micro_batch_size_per_gpu (null)          ``per_device_train_batch_size`` = micro completions (null:
                                                   the largest divisor of M*n/W that is <= 8)
actor.optim.lr (1e-6)                              ``learning_rate``; ``lr_scheduler_type`` constant, 0 warm-up
actor.optim.weight_decay / betas (0.01, 0.9/0.999) ``weight_decay``, ``adam_beta1``/``adam_beta2`` (AdamW)
actor.grad_clip (1.0)                              ``max_grad_norm``
actor.clip_ratio[_low/_high] (0.2)                 ``epsilon`` / ``epsilon_high``
actor.ppo_epochs (1)                               ``num_iterations``
rollout.temperature / top_p / top_k (0.7, 1, -1)   ``temperature`` / ``top_p`` / ``top_k`` (-1 -> 0 = off)
actor.use_kl_loss, kl_loss_coef (true, 1e-3)       ``beta`` (0 when use_kl_loss is false: no reference model)
actor.kl_loss_type (low_var_kl)                    TRL's only estimator, k3 = exp(ref-logp)-(ref-logp)-1, which
                                                   is verl's low_var_kl without its [-10, 10] clamp;
                                                   ``use_bias_correction_kl`` False (verl has no IS factor)
actor.entropy_coeff (0)                            ``entropy_coef``
actor.loss_agg_mode (token-mean)                   ``loss_type`` "bnpo": token-mean over each micro-batch, divided
                                                   by grad-accumulation steps, as the original (vendored verl 0.2)
                                                   did; seq-mean-token-mean -> "grpo", seq-mean-token-sum-norm ->
                                                   "dr_grpo". (verl 0.9.1's token-mean divides by the tokens of
                                                   the whole mini-batch: that is TRL "dapo", ``trl.loss_type=dapo``;
                                                   both are equal when micro = M*n.)
algorithm.adv_estimator (grpo),                    ``scale_rewards`` "group": (r - group mean) / group std
algorithm.norm_adv_by_std_in_grpo (true)           (unbiased, as verl; TRL adds 1e-4, verl 1e-6); false -> "none"
data.max_prompt_length (4096)                      TRL 1.16 has no prompt limit: longer prompts (chat template,
                                                   generation prompt) are dropped here, as verl's
                                                   filter_overlong_prompts
data.max_response_length (8192)                    ``max_completion_length``
data.shuffle / data.seed (true / null -> 42)       ``shuffle_dataset`` / ``seed``
data.train_max_samples / val_max_samples (-1)      first N rows of each file (-1 = all)
trainer.total_epochs (7)                           ``num_train_epochs``
trainer.total_training_steps (null), --max-steps   ``max_steps`` = steps * k
trainer.save_freq (10)                             ``save_steps`` = save_freq * k (<= 0: no checkpoints)
trainer.test_freq (10), val_before_train (false)   ``eval_steps`` = test_freq * k on --val-file, greedy, 1 sample per
                                                   prompt (verl's validation), also at the end; <= 0 or no
                                                   --val-file: none; val_before_train: one evaluate() first
trainer.logger (console)                           ``report_to`` none; "wandb" adds wandb (project_name,
                                                   experiment_name -> WANDB_PROJECT, ``run_name``)
model.enable_gradient_checkpointing (true)         ``gradient_checkpointing``
reward.custom_reward_function.reward_kwargs        passed to every ``compute_score`` call (mode, variant, flags)
(fixed)                                            ``use_vllm`` False, ``remove_unused_columns`` False,
                                                   ``logging_steps`` k, ``bf16`` on CUDA only, fp32 weights
=================================================  ===========================================================

``trl.<field>=value`` sets any other ``GRPOConfig`` field directly (applied last). ``+ablation=<name>`` merges
``config/ablation/<name>.yaml`` as Hydra would. Keys of the config that the TRL backend has no use for (vLLM, FSDP,
Ray, paths: the model and data come from the flags) are listed in the log and ignored; an unknown key is an error.

One training step = one generation of B*n completions and k optimizer steps, as in verl; every per-step file counts
training steps. Outputs in ``--output-dir``: ``checkpoint-<optimizer step>/`` (TRL/Trainer checkpoints),
``final/`` (the trained model + tokenizer, a Hugging Face folder), ``metrics.jsonl`` (one line per training step:
step, reward_mean, format_rate, exact_match_rate, completion_length, kl, ...), ``val_metrics.jsonl``,
``resolved_config.json`` (the verl-style values and the GRPOConfig built from them).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "config" / "tool_n1_grpo.yaml"
ABLATION_DIR = HERE / "config" / "ablation"
REWARD_KWARGS = "reward.custom_reward_function.reward_kwargs"
METRICS_FILE = "metrics.jsonl"
VAL_METRICS_FILE = "val_metrics.jsonl"
FINAL_DIR = "final"
DEFAULT_MAX_MICRO = 8

log = logging.getLogger("tool_n1.train_trl")

#: The recipe's values, used when the verl config is absent (and for keys it leaves to verl's ``ppo_trainer``).
#: Paper Table 6 / launch script (``shared/reference/original_behaviour.md`` §4.2), verl defaults (§4.3).
DEFAULTS: dict[str, Any] = {
    "data.train_batch_size": 1024,
    "data.max_prompt_length": 4096,
    "data.max_response_length": 8192,
    "data.filter_overlong_prompts": True,
    "data.shuffle": True,
    "data.seed": None,
    "data.train_max_samples": -1,
    "data.val_max_samples": -1,
    "algorithm.adv_estimator": "grpo",
    "algorithm.norm_adv_by_std_in_grpo": True,
    "actor_rollout_ref.model.enable_gradient_checkpointing": True,
    "actor_rollout_ref.rollout.n": 5,
    "actor_rollout_ref.rollout.temperature": 0.7,
    "actor_rollout_ref.rollout.top_p": 1.0,
    "actor_rollout_ref.rollout.top_k": -1,
    "actor_rollout_ref.actor.optim.lr": 1e-6,
    "actor_rollout_ref.actor.optim.weight_decay": 0.01,
    "actor_rollout_ref.actor.optim.betas": [0.9, 0.999],
    "actor_rollout_ref.actor.optim.lr_warmup_steps": -1,
    "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio": 0.0,
    "actor_rollout_ref.actor.ppo_mini_batch_size": 256,
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": None,
    "actor_rollout_ref.actor.ppo_epochs": 1,
    "actor_rollout_ref.actor.clip_ratio": 0.2,
    "actor_rollout_ref.actor.clip_ratio_low": None,
    "actor_rollout_ref.actor.clip_ratio_high": None,
    "actor_rollout_ref.actor.grad_clip": 1.0,
    "actor_rollout_ref.actor.loss_agg_mode": "token-mean",
    "actor_rollout_ref.actor.use_kl_loss": True,
    "actor_rollout_ref.actor.kl_loss_coef": 0.001,
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.actor.entropy_coeff": 0.0,
    f"{REWARD_KWARGS}.mode": "faithful",
    f"{REWARD_KWARGS}.variant": None,
    "trainer.total_epochs": 7,
    "trainer.total_training_steps": None,
    "trainer.save_freq": 10,
    "trainer.test_freq": 10,
    "trainer.val_before_train": False,
    "trainer.logger": ["console"],
    "trainer.project_name": "tool_n1",
    "trainer.experiment_name": "qwen2.5_7b_grpo",
}
LOSS_AGG_TO_TRL = {"token-mean": "bnpo", "seq-mean-token-mean": "grpo", "seq-mean-token-sum-norm": "dr_grpo"}
KL_TYPES = ("low_var_kl", "k3")


class ConfigError(ValueError):
    """A configuration this backend cannot run (message says which key and why)."""


# ----------------------------------------------------------------------------------------------- configuration


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"a.b.c": leaf}`` (lists are leaves)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as handle:
        tree = yaml.safe_load(handle) or {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: not a mapping")
    tree.pop("defaults", None)
    tree.pop("hydra", None)
    return flatten(tree)


def parse_value(text: str) -> Any:
    """CLI value -> Python: JSON (numbers incl. ``1e-6``, lists, ``true``, ``null``), ``None``/``True``, or text."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    lowered = text.strip().lower()
    if lowered in ("none", "null", "~"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    return text


def load_config(config: str | Path | None, overrides: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(flat verl-style values, TRL pass-through fields). ``config`` None = the recipe file if present, else DEFAULTS.

    Order: :data:`DEFAULTS` < config file < ``+ablation=<name>`` files < ``key=value`` overrides (in command order).
    """
    values = dict(DEFAULTS)
    source = "built-in defaults (paper Table 6)"
    path = Path(config) if config is not None else DEFAULT_CONFIG
    if path.is_file():
        values.update(_read_yaml(path))
        source = str(path)
    elif config is not None:
        raise ConfigError(f"--config {config}: no such file")
    known = set(values)
    trl_fields: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value (e.g. actor_rollout_ref.rollout.n=4)")
        key, raw = item.split("=", 1)
        key = key.strip().lstrip("+")
        if key == "ablation":
            ablation = ABLATION_DIR / f"{raw}.yaml"
            if not ablation.is_file():
                choices = sorted(p.stem for p in ABLATION_DIR.glob("*.yaml")) if ABLATION_DIR.is_dir() else []
                raise ConfigError(f"+ablation={raw}: no {ablation} (available: {', '.join(choices) or 'none'})")
            delta = _read_yaml(ablation)
            values.update(delta)
            known.update(delta)
            continue
        value = parse_value(raw)
        if key.startswith("trl."):
            trl_fields[key[4:]] = value
        elif key in known or key.startswith(REWARD_KWARGS + "."):
            values[key] = value
        else:
            close = [k for k in sorted(known) if k.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1]]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown config key {key!r}{hint}; GRPOConfig fields go as trl.<field>=value")
    values["_source"] = source
    return values, trl_fields


def reward_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    """``reward.custom_reward_function.reward_kwargs.*`` -> keyword arguments of ``compute_score``."""
    prefix = REWARD_KWARGS + "."
    kwargs = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    if values.get(REWARD_KWARGS) not in (None, {}):  # an explicit empty mapping flattens to the bare key
        raise ConfigError(f"{REWARD_KWARGS} must be a mapping")
    return kwargs


#: Every key that :func:`grpo_config_kwargs` reads (others in the file are reported as ignored).
def _used_keys() -> set[str]:
    return set(DEFAULTS)


def _largest_divisor_at_most(number: int, limit: int) -> int:
    return max(d for d in range(1, min(number, limit) + 1) if number % d == 0)


def grpo_config_kwargs(
    values: dict[str, Any],
    trl_fields: dict[str, Any] | None = None,
    *,
    output_dir: str,
    world_size: int = 1,
    device: str = "cpu",
    max_steps: int | None = None,
    has_val: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """verl-style values -> (``GRPOConfig`` keyword arguments, plan). Raises :class:`ConfigError` on a bad combo.

    The plan holds the derived quantities (``optimizer_steps_per_step`` k, prompts, completions, reward kwargs, ...).
    """
    g = lambda key: values[key]  # noqa: E731
    actor = "actor_rollout_ref.actor."
    rollout = "actor_rollout_ref.rollout."

    def positive_int(key: str) -> int:
        value = g(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
        return value

    batch = positive_int("data.train_batch_size")
    n = positive_int(rollout + "n")
    if n < 2:
        raise ConfigError(f"{rollout}n must be >= 2 for GRPO (group-normalised advantages), got {n}")
    mini = positive_int(actor + "ppo_mini_batch_size")
    mini_clamped = mini > batch
    mini = min(mini, batch)
    if batch % mini:
        raise ConfigError(
            f"data.train_batch_size ({batch}) must be a multiple of {actor}ppo_mini_batch_size ({mini}) "
            "(verl: an integer number of optimizer steps per training step)"
        )
    k = batch // mini
    if (mini * n) % world_size:
        raise ConfigError(
            f"{actor}ppo_mini_batch_size * rollout.n = {mini * n} completions per optimizer step are not divisible "
            f"by the {world_size} processes"
        )
    per_process = mini * n // world_size
    micro = g(actor + "ppo_micro_batch_size_per_gpu")
    if micro is None:
        micro = _largest_divisor_at_most(per_process, DEFAULT_MAX_MICRO)
    elif isinstance(micro, bool) or not isinstance(micro, int) or micro < 1:
        raise ConfigError(f"{actor}ppo_micro_batch_size_per_gpu must be a positive integer or null, got {micro!r}")
    if per_process % micro:
        raise ConfigError(
            f"{actor}ppo_micro_batch_size_per_gpu ({micro}) must divide the {per_process} completions per process "
            f"per optimizer step (ppo_mini_batch_size {mini} x rollout.n {n} / {world_size} processes)"
        )
    grad_acc = per_process // micro

    if g("algorithm.adv_estimator") != "grpo":
        raise ConfigError(f"algorithm.adv_estimator={g('algorithm.adv_estimator')!r}: the TRL backend is GRPO only")
    loss_agg = g(actor + "loss_agg_mode")
    if loss_agg not in LOSS_AGG_TO_TRL:
        raise ConfigError(f"{actor}loss_agg_mode={loss_agg!r}: supported {sorted(LOSS_AGG_TO_TRL)}")
    use_kl = bool(g(actor + "use_kl_loss"))
    if use_kl and g(actor + "kl_loss_type") not in KL_TYPES:
        raise ConfigError(f"{actor}kl_loss_type={g(actor + 'kl_loss_type')!r}: TRL only has k3 (= low_var_kl)")
    clip = float(g(actor + "clip_ratio"))
    low = g(actor + "clip_ratio_low")
    high = g(actor + "clip_ratio_high")
    betas = list(g(actor + "optim.betas"))
    warmup_steps = g(actor + "optim.lr_warmup_steps")
    warmup_ratio = float(g(actor + "optim.lr_warmup_steps_ratio") or 0.0)
    if warmup_steps is not None and warmup_steps > 0:
        warmup = warmup_steps * k
    else:
        warmup = warmup_ratio  # transformers 5: a float < 1 is a ratio of the total steps
    steps = max_steps if max_steps is not None else g("trainer.total_training_steps")
    save_freq = g("trainer.save_freq") or 0
    test_freq = g("trainer.test_freq") or 0
    do_eval = has_val and test_freq > 0
    top_k = g(rollout + "top_k")
    loggers = g("trainer.logger") or []
    loggers = [loggers] if isinstance(loggers, str) else list(loggers)
    report_to = [x for x in loggers if x != "console"] or ["none"]
    seed = g("data.seed")
    cuda = device == "cuda"

    kwargs: dict[str, Any] = {
        "output_dir": output_dir,
        "num_generations": n,
        "per_device_train_batch_size": micro,
        "gradient_accumulation_steps": grad_acc,
        "steps_per_generation": k * grad_acc,
        "learning_rate": float(g(actor + "optim.lr")),
        "lr_scheduler_type": "constant_with_warmup" if warmup else "constant",
        "warmup_steps": warmup,
        "weight_decay": float(g(actor + "optim.weight_decay")),
        "adam_beta1": float(betas[0]),
        "adam_beta2": float(betas[1]),
        "max_grad_norm": float(g(actor + "grad_clip")),
        "epsilon": float(low if low is not None else clip),
        "epsilon_high": float(high if high is not None else clip),
        "num_iterations": int(g(actor + "ppo_epochs")),
        "temperature": float(g(rollout + "temperature")),
        "top_p": float(g(rollout + "top_p")),
        "top_k": 0 if top_k is None or top_k < 0 else int(top_k),
        "beta": float(g(actor + "kl_loss_coef")) if use_kl else 0.0,
        "use_bias_correction_kl": False,
        "importance_sampling_level": "token",
        "entropy_coef": float(g(actor + "entropy_coeff") or 0.0),
        "loss_type": LOSS_AGG_TO_TRL[loss_agg],
        "scale_rewards": "group" if g("algorithm.norm_adv_by_std_in_grpo") else "none",
        "mask_truncated_completions": False,
        "max_completion_length": positive_int("data.max_response_length"),
        "shuffle_dataset": bool(g("data.shuffle")),
        "seed": 42 if seed is None else int(seed),
        "num_train_epochs": float(g("trainer.total_epochs")),
        "max_steps": steps * k if steps is not None and steps > 0 else -1,
        "save_strategy": "steps" if save_freq > 0 else "no",
        "save_steps": save_freq * k if save_freq > 0 else 500,
        "eval_strategy": "steps" if do_eval else "no",
        "eval_steps": test_freq * k if do_eval else None,
        "per_device_eval_batch_size": micro,
        "num_generations_eval": 1,
        "logging_steps": k,
        "logging_first_step": False,
        "report_to": report_to,
        "run_name": g("trainer.experiment_name"),
        "gradient_checkpointing": bool(g("actor_rollout_ref.model.enable_gradient_checkpointing")),
        "use_vllm": False,
        "remove_unused_columns": False,
        "use_cpu": not cuda,
        "bf16": cuda,
        "model_init_kwargs": {"dtype": "float32"},
        "log_completions": False,
        "save_only_model": False,
        "dataloader_num_workers": 0,
    }
    unknown = set(trl_fields or {}) - _grpo_config_fields()
    if unknown:
        raise ConfigError(f"trl.{sorted(unknown)[0]}: not a GRPOConfig field of the installed TRL")
    kwargs.update(trl_fields or {})
    plan = {
        "prompts_per_step": batch,
        "completions_per_step": batch * n,
        "prompts_per_optimizer_step": mini,
        "mini_batch_clamped": mini_clamped,
        "optimizer_steps_per_step": k,
        "world_size": world_size,
        "max_prompt_length": positive_int("data.max_prompt_length"),
        "filter_overlong_prompts": bool(g("data.filter_overlong_prompts")),
        "train_max_samples": g("data.train_max_samples"),
        "val_max_samples": g("data.val_max_samples"),
        "reward_kwargs": reward_kwargs(values),
        "project_name": g("trainer.project_name"),
        "val_before_train": bool(g("trainer.val_before_train")) and do_eval,
    }
    return kwargs, plan


def _grpo_config_fields() -> set[str]:
    import dataclasses

    from trl import GRPOConfig

    return {f.name for f in dataclasses.fields(GRPOConfig)}


def ignored_keys(values: dict[str, Any]) -> list[str]:
    used = _used_keys()
    return sorted(k for k in values if k not in used and not k.startswith(REWARD_KWARGS) and not k.startswith("_"))


# ------------------------------------------------------------------------------------------------------ reward


class ToolN1Reward:
    """TRL reward function around ``compute_score``: decodes the completion tokens like verl and scores each row.

    TRL calls it with ``prompts, completions, completion_ids`` and every dataset column (``reward_model``,
    ``extra_info``, ``data_source``) repeated per completion. The completion text is the decoded completion ids
    (``skip_special_tokens=True``, as verl decodes responses), not TRL's parsed message, so a tokenizer with a
    response schema cannot strip the ``<tool_call>`` block. The other result keys are logged as means
    (``tool_n1/format_ok``, ``tool_n1/calls_match``, ...).
    """

    __name__ = "tool_n1"
    LOGGED = ("format_ok", "call_parsed", "names_match", "calls_match")

    def __init__(self, tokenizer, kwargs: dict[str, Any], score_fn: Callable[..., dict] | None = None):
        if score_fn is None:
            from tool_n1.reward import compute_score as score_fn
        self.tokenizer = tokenizer
        self.kwargs = dict(kwargs)
        self.score_fn = score_fn

    def texts(self, completions, completion_ids) -> list[str]:
        if completion_ids is not None:
            return self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
        return [c[-1]["content"] if isinstance(c, list) else c for c in completions]

    def __call__(self, prompts, completions, completion_ids=None, **columns) -> list[float]:
        texts = self.texts(completions, completion_ids)
        count = len(texts)
        sources = columns.get("data_source") or ["toolcall"] * count
        models = columns.get("reward_model") or [None] * count
        infos = columns.get("extra_info") or [None] * count
        scores, sums, errors = [], dict.fromkeys(self.LOGGED, 0.0), 0
        for text, source, model, info in zip(texts, sources, models, infos, strict=True):
            truth = model.get("ground_truth") if isinstance(model, dict) else None
            result = self.score_fn(source, text, truth, info, **self.kwargs)
            scores.append(float(result["score"]))
            for key in self.LOGGED:
                sums[key] += float(result.get(key, 0.0))
            errors += bool(result.get("parse_error"))
        log_metric = columns.get("log_metric")
        if log_metric is not None and count:
            for key, total in sums.items():
                log_metric(f"tool_n1/{key}", total / count)
            log_metric("tool_n1/parse_error", errors / count)
        return scores


# ------------------------------------------------------------------------------------------------------ data


def load_rows(path: str, limit: int | None):
    """verl parquet -> ``datasets.Dataset`` with the columns TRL and the reward need (no hub, no cache files)."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    schema = pq.read_schema(path)
    missing = {"prompt", "reward_model"} - set(schema.names)
    if missing:
        raise ConfigError(f"{path}: not a verl parquet (missing column(s) {sorted(missing)})")
    columns = [c for c in ("prompt", "data_source", "reward_model", "extra_info") if c in schema.names]
    table = pq.read_table(path, columns=columns)
    if limit is not None and limit >= 0:
        table = table.slice(0, limit)
    return Dataset(table)


def filter_overlong(dataset, tokenizer, max_length: int, what: str):
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in dataset["prompt"]]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    keep = [i for i, length in enumerate(lengths) if length <= max_length]
    dropped = len(lengths) - len(keep)
    if dropped:
        log.info("%s: dropped %d of %d prompts longer than %d tokens", what, dropped, len(lengths), max_length)
    return dataset.select(keep) if dropped else dataset, lengths


# --------------------------------------------------------------------------------------------- metrics, resume

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


# ------------------------------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train_trl.py",
        description=(
            "Tool-N1 GRPO on one machine (TRL GRPOTrainer, CPU or one GPU, no vLLM): the verl parquet, the Tool-N1 "
            "reward and the verl recipe's config names. Mapping table: this file's docstring."
        ),
        epilog=(
            "overrides use the verl recipe's dotted names, for example:\n"
            "  data.train_batch_size=8 actor_rollout_ref.rollout.n=4 data.max_response_length=256\n"
            "  actor_rollout_ref.actor.optim.lr=1e-6 trainer.save_freq=5 trainer.test_freq=-1\n"
            "  reward.custom_reward_function.reward_kwargs.variant=lexico   +ablation=binary_no_think\n"
            "trl.<GRPOConfig field>=value sets a TRL field directly (e.g. trl.loss_type=dapo)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="local Hugging Face model folder (policy and KL reference)")
    parser.add_argument("--train-file", required=True, help="verl train.parquet (data_process/to_verl_parquet.py)")
    parser.add_argument("--val-file", help="verl test.parquet: greedy validation every trainer.test_freq steps")
    parser.add_argument("--output-dir", required=True, help="checkpoints, final/ model, metrics.jsonl")
    parser.add_argument(
        "--config",
        help=f"verl recipe YAML (default: {DEFAULT_CONFIG.relative_to(HERE.parent)} if present, else the built-in "
        "paper values); Hydra 'defaults' are not composed, missing keys take the built-in values",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="verl-style overrides (see below), applied in order"
    )
    parser.add_argument(
        "--max-steps", type=int, help="stop after this many training steps (overrides trainer.total_training_steps)"
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto (default): cuda if visible, else cpu"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint-* in --output-dir (fresh if none)"
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved values and GRPOConfig fields, then exit"
    )
    return parser


def resolve_device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device visible")
    return choice


def main(argv: list[str] | None = None, *, score_fn: Callable[..., dict] | None = None) -> dict[str, Any]:
    """Run training; returns a summary dict (also written to ``resolved_config.json``). ``score_fn`` replaces
    ``compute_score`` (tests spy on it)."""
    args = build_parser().parse_intermixed_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        values, trl_fields = load_config(args.config, args.overrides)
        device = resolve_device(args.device)
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        output_dir = Path(args.output_dir)
        kwargs, plan = grpo_config_kwargs(
            values,
            trl_fields,
            output_dir=str(output_dir),
            world_size=world_size,
            device=device,
            max_steps=args.max_steps,
            has_val=args.val_file is not None,
        )
        from tool_n1.reward import compute_score

        probe = (score_fn or compute_score)("toolcall", "", "[]", {"prompt_type": "qwen"}, **plan["reward_kwargs"])
        if "score" not in probe:
            raise ConfigError("the score function returned no 'score'")
    except ConfigError as exc:
        raise SystemExit(f"train_trl.py: configuration error: {exc}") from None
    except ValueError as exc:  # compute_score: unknown variant / mode / flag
        raise SystemExit(f"train_trl.py: {REWARD_KWARGS}: {exc}") from None
    log.info("config: %s", values["_source"])
    if plan["mini_batch_clamped"]:
        log.info("ppo_mini_batch_size > train_batch_size: one optimizer step per training step")
    ignored = ignored_keys(values)
    if ignored:
        log.info("not used by the TRL backend: %s", ", ".join(ignored))
    if args.print_config:
        print(json.dumps({"values": values, "grpo_config": kwargs, "plan": plan}, indent=2, default=str))
        return {"grpo_config": kwargs, "plan": plan}

    if Path(args.model).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if "wandb" in kwargs["report_to"]:
        os.environ.setdefault("WANDB_PROJECT", str(plan["project_name"]))

    from transformers import AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOConfig, GRPOTrainer

    main_process = int(os.environ.get("RANK", "0")) == 0
    output_dir.mkdir(parents=True, exist_ok=True)
    resume_from = get_last_checkpoint(str(output_dir)) if args.resume else None
    if args.resume and resume_from is None:
        log.info("--resume: no checkpoint in %s, starting fresh", output_dir)
    if not args.resume and get_last_checkpoint(str(output_dir)) is not None:
        log.warning("%s holds checkpoints from an earlier run; they are not used (pass --resume)", output_dir)
    if main_process:
        truncate_metrics(output_dir, checkpoint_step(resume_from) if resume_from else 0)
    if resume_from:
        log.info("resuming from %s", resume_from)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = load_rows(args.train_file, plan["train_max_samples"])
    val = load_rows(args.val_file, plan["val_max_samples"]) if args.val_file else None
    if plan["filter_overlong_prompts"]:
        train, _ = filter_overlong(train, tokenizer, plan["max_prompt_length"], "train")
        if val is not None:
            val, _ = filter_overlong(val, tokenizer, plan["max_prompt_length"], "val")
    if len(train) < plan["prompts_per_step"]:
        raise SystemExit(
            f"train_trl.py: {len(train)} training prompts, fewer than data.train_batch_size "
            f"({plan['prompts_per_step']}); lower it or add data"
        )

    config = GRPOConfig(**kwargs)
    k = plan["optimizer_steps_per_step"]
    summary = {
        "model": args.model,
        "train_file": args.train_file,
        "val_file": args.val_file,
        "train_prompts": len(train),
        "val_prompts": len(val) if val is not None else 0,
        "device": device,
        "values": {key: v for key, v in values.items() if not key.startswith("_")},
        "config_source": values["_source"],
        "plan": plan,
        "grpo_config": {key: kwargs[key] for key in sorted(kwargs)},
    }
    if main_process:
        (output_dir / "resolved_config.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")

    reward = ToolN1Reward(tokenizer, plan["reward_kwargs"], score_fn)
    total = config.max_steps // k if config.max_steps > 0 else None
    trainer = _trainer_class(GRPOTrainer)(
        model=args.model,
        reward_funcs=[reward],
        args=config,
        train_dataset=train,
        eval_dataset=val if config.eval_strategy != "no" else None,
        processing_class=tokenizer,
        callbacks=[make_metrics_callback(output_dir, k, total)],
    )
    if plan["val_before_train"]:
        trainer.evaluate()
    result = trainer.train(resume_from_checkpoint=resume_from)
    final = output_dir / FINAL_DIR
    trainer.save_model(str(final))
    tokenizer.save_pretrained(str(final))
    summary.update(global_step=trainer.state.global_step, steps=trainer.state.global_step // k, final=str(final))
    summary["train_runtime_s"] = result.metrics.get("train_runtime")
    if main_process:
        (output_dir / "resolved_config.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info("done: %d training steps; model in %s; metrics in %s", summary["steps"], final, output_dir / METRICS_FILE)
    return summary


def _trainer_class(base):
    """GRPOTrainer whose evaluation generates greedily (verl validation: do_sample False, n 1)."""

    class ToolN1GRPOTrainer(base):
        def _generate(self, prompts):
            if self.model.training or not hasattr(self, "generation_config"):
                return super()._generate(prompts)
            sampling = self.generation_config
            greedy = sampling.to_dict()
            greedy.update(do_sample=False, temperature=None, top_p=None, top_k=None, min_p=None)
            self.generation_config = type(sampling)(**{k: v for k, v in greedy.items() if not k.startswith("_")})
            try:
                return super()._generate(prompts)
            finally:
                self.generation_config = sampling

    return ToolN1GRPOTrainer


if __name__ == "__main__":
    main(sys.argv[1:])
