"""The verl recipe as flat dotted values: built-in defaults, the config file, ``+ablation=`` files, CLI overrides.

Used by ``train_trl.py`` (the single-machine TRL backend): :func:`load_config` reads ``config/tool_n1_grpo.yaml``
(the paper's values, as deltas from verl's defaults) over :data:`VERL_DEFAULTS` the way Hydra would, flattened to
verl's dotted names (``actor_rollout_ref.rollout.n``); ``trl_grpo_config.py`` turns the result into ``GRPOConfig``
arguments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "config" / "tool_n1_grpo.yaml"
ABLATION_DIR = HERE / "config" / "ablation"
REWARD_KWARGS = "reward.custom_reward_function.reward_kwargs"

#: verl 0.9.1's ``ppo_trainer`` defaults for every key this backend reads (tests/test_trl_backend.py checks them
#: against verl's composed config). The paper's hyper-parameters live in one place only, the recipe file
#: ``config/tool_n1_grpo.yaml``, which :func:`load_config` always applies on top of these.
VERL_DEFAULTS: dict[str, Any] = {
    "data.train_batch_size": 1024,
    "data.max_prompt_length": 512,
    "data.max_response_length": 512,
    "data.filter_overlong_prompts": False,
    "data.shuffle": True,
    "data.seed": None,
    "data.train_max_samples": -1,
    "data.val_max_samples": -1,
    "algorithm.adv_estimator": "gae",
    "algorithm.norm_adv_by_std_in_grpo": True,
    "algorithm.filter_groups.enable": False,
    "algorithm.filter_groups.metric": "reward",
    "algorithm.filter_groups.max_num_gen_batches": 0,
    "actor_rollout_ref.model.enable_gradient_checkpointing": True,
    "actor_rollout_ref.model.lora_rank": 0,
    "actor_rollout_ref.model.lora_alpha": 16,
    "actor_rollout_ref.model.target_modules": "all-linear",
    "actor_rollout_ref.rollout.n": 1,
    "actor_rollout_ref.rollout.temperature": 1.0,
    "actor_rollout_ref.rollout.top_p": 1,
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
    "actor_rollout_ref.actor.clip_ratio_low": 0.2,
    "actor_rollout_ref.actor.clip_ratio_high": 0.2,
    "actor_rollout_ref.actor.grad_clip": 1.0,
    "actor_rollout_ref.actor.loss_agg_mode": "token-mean",
    "actor_rollout_ref.actor.use_kl_loss": False,
    "actor_rollout_ref.actor.kl_loss_coef": 0.001,
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.actor.entropy_coeff": 0,
    f"{REWARD_KWARGS}.mode": None,
    f"{REWARD_KWARGS}.variant": None,
    "trainer.total_epochs": 30,
    "trainer.total_training_steps": None,
    "trainer.save_freq": -1,
    "trainer.test_freq": -1,
    "trainer.val_before_train": True,
    "trainer.logger": ["console", "wandb"],
    "trainer.project_name": "verl_examples",
    "trainer.experiment_name": "gsm8k",
}


class ConfigError(ValueError):
    """A configuration this backend cannot run (message says which key and why)."""


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
    """(flat verl-style values, TRL pass-through fields); ``config`` None = ``config/tool_n1_grpo.yaml``.

    Order: :data:`VERL_DEFAULTS` < config file < ``+ablation=<name>`` files < ``key=value`` overrides (in command
    order).
    """
    values = dict(VERL_DEFAULTS)
    path = Path(config) if config is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file (the recipe is verl/config/tool_n1_grpo.yaml)")
    values.update(_read_yaml(path))
    source = str(path)
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


#: Every key that ``trl_grpo_config.grpo_config_kwargs`` reads (others in the file are reported as ignored).
def _used_keys() -> set[str]:
    from trl_multiturn import USED_KEYS

    return set(VERL_DEFAULTS) | USED_KEYS


def ignored_keys(values: dict[str, Any]) -> list[str]:
    used = _used_keys()
    return sorted(k for k in values if k not in used and not k.startswith(REWARD_KWARGS) and not k.startswith("_"))
