"""verl recipe values -> TRL ``GRPOConfig`` keyword arguments (the mapping table: ``train_trl.py``'s docstring).

:func:`grpo_config_kwargs` takes the flat values of ``trl_recipe.load_config`` and returns the ``GRPOConfig`` fields
plus a plan of the derived quantities (optimizer steps per training step, prompts, completions, reward kwargs).
"""

from __future__ import annotations

from typing import Any

from trl_recipe import ConfigError, reward_kwargs

DEFAULT_MAX_MICRO = 8
LOSS_AGG_TO_TRL = {"token-mean": "bnpo", "seq-mean-token-mean": "grpo", "seq-mean-token-sum-norm": "dr_grpo"}
KL_TYPES = ("low_var_kl", "k3")
FILTER_METRICS = ("reward", "score", "seq_reward")  # all the reward here: what the groups are normalised by


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
    filter_groups = None
    if g("algorithm.filter_groups.enable"):
        metric = g("algorithm.filter_groups.metric") or "reward"
        if metric not in FILTER_METRICS:
            raise ConfigError(f"algorithm.filter_groups.metric={metric!r}: this backend has {list(FILTER_METRICS)}")
        limit = g("algorithm.filter_groups.max_num_gen_batches")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigError(f"algorithm.filter_groups.max_num_gen_batches must be an integer >= 0, got {limit!r}")
        if world_size > 1:
            raise ConfigError("algorithm.filter_groups: the TRL backend supports it on one process only")
        filter_groups = {"metric": metric, "max_num_gen_batches": limit, "seed": 42 if seed is None else int(seed)}

    lora = None
    rank = g("actor_rollout_ref.model.lora_rank") or 0
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ConfigError(f"actor_rollout_ref.model.lora_rank must be an integer >= 0, got {rank!r}")
    if rank:
        targets = g("actor_rollout_ref.model.target_modules")
        lora = {"r": rank, "lora_alpha": g("actor_rollout_ref.model.lora_alpha"), "target_modules": targets}

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
        "filter_groups": filter_groups,
        "lora": lora,
    }
    return kwargs, plan


def _grpo_config_fields() -> set[str]:
    import dataclasses

    from trl import GRPOConfig

    return {f.name for f in dataclasses.fields(GRPOConfig)}
