"""Validate a Tool-N1 GRPO configuration against the installed verl, without a GPU, Ray or vLLM (about 5-10 s).

    .venv/rl/bin/python verl/validate_config.py tool_n1.data_dir=/abs/data/verl [HYDRA_OVERRIDES...]
    .venv/rl/bin/python verl/validate_config.py tool_n1.data_dir=data/verl +ablation=qwen2.5_14b
    .venv/rl/bin/python verl/validate_config.py --base verl <the original command's overrides>   # verl's ppo_trainer
    .venv/rl-vllm/bin/python verl/validate_config.py --deps tool_n1.data_dir=/tmp/d +device=cpu   # CPU profile + deps

It composes the config exactly as ``python -m verl.trainer.main_ppo --config-path verl/config --config-name
tool_n1_grpo`` would, then runs the checks ``main_ppo`` and the trainer would only reach after Ray and the GPU
workers are up:

1. Hydra composition (``+key`` for an existing key, unknown groups, bad syntax).
2. verl's own ``verl.utils.config.validate_config`` with ``need_reference_policy`` / ``need_critic``, as ``main_ppo``
   calls it (batch-size divisibility, micro-batch settings, typed FSDP engine configs, e.g. ``grad_offload``).
3. The reward, through verl's own functions: ``migrate_legacy_reward_impl``, ``resolve_reward_manager_cls`` and
   ``get_custom_reward_fn`` (imports the file or ``pkg://`` module and the function), then one call on a sample
   response. A missing ``reward.custom_reward_function.path`` is an error here (verl would silently fall back to its
   built-in scorers, which have no ``toolcall`` source).
4. Typed configs: ``omega_conf_to_dataclass`` on ``algorithm`` and ``actor_rollout_ref.rollout`` (e.g. the removed
   ``rollout.mode=sync``); the rollout name must be a registered rollout replica (vllm, sglang, trtllm).
5. Leftover mandatory values (``???``), e.g. a missing ``actor_rollout_ref.rollout.name``.

6. Every interpolation resolves (``${tool_n1.data_dir}``, ``${oc.env:MODEL_PATH}`` in the SFT-then-RL ablation).

7. With ``--deps``: this environment has what the composed profile needs (verl/preflight.py: CUDA, vllm and
   flash_attn for the GPU recipe; vLLM's CPU build and the ``tool_n1_verl_cpu`` platform for ``+device=cpu``).

Warnings (not errors unless ``--strict-paths``): data files or a local model folder that do not exist here.
Prints one line per check and ``RESULT: VALID`` (exit 0) or ``RESULT: INVALID`` (exit 1).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "config"
CONFIG_NAME = "tool_n1_grpo"

_SAMPLE_GT = json.dumps([{"name": "get_weather", "arguments": {"city": "Paris"}}])
_SAMPLE_RESPONSE = "<think>The user asks for the weather.</think>\n<tool_call>\n" + _SAMPLE_GT + "\n</tool_call>"


def _installed_verl_config_dir() -> str:
    import verl

    if getattr(verl, "__file__", None) is None:  # our own verl/ folder as a namespace package: verl is not installed
        raise ImportError("the verl package is not installed in this environment (found only a namespace folder)")
    return os.path.join(os.path.dirname(verl.__file__), "trainer", "config")


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) not in text:
        text += f" <- {type(cause).__name__}: {cause}"
    return " ".join(text.split())[:600]


def compose(overrides: list[str], base: str = "tool_n1", config_dir: str | os.PathLike | None = None):
    """Hydra-compose our recipe (``base='tool_n1'``) or verl's own ``ppo_trainer`` (``base='verl'``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if base == "verl":
        config_dir, config_name = _installed_verl_config_dir(), "ppo_trainer"
    else:
        config_dir, config_name = str(config_dir or CONFIG_DIR), CONFIG_NAME
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base=None):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def _check_reward(cfg, errors: list[str], lines: list[str]) -> None:
    from omegaconf import OmegaConf, open_dict
    from verl.experimental.reward_loop.reward_loop import migrate_legacy_reward_impl
    from verl.trainer.ppo.reward import get_custom_reward_fn, resolve_reward_manager_cls

    rcfg = copy.deepcopy(cfg)
    with open_dict(rcfg):
        migrate_legacy_reward_impl(rcfg)
    manager = resolve_reward_manager_cls(rcfg)
    fn_cfg = rcfg.reward.get("custom_reward_function") or {}
    if not fn_cfg.get("path"):
        errors.append(
            "[3] reward.custom_reward_function.path is not set: verl would fall back to its built-in scorers, "
            "which have no 'toolcall' source (set it to pkg://tool_n1.reward)"
        )
        return
    fn = get_custom_reward_fn(rcfg)
    kwargs = OmegaConf.to_container(fn_cfg.get("reward_kwargs") or {}, resolve=True)
    result = fn(
        data_source="toolcall",
        solution_str=_SAMPLE_RESPONSE,
        ground_truth=_SAMPLE_GT,
        extra_info={"split": "test", "index": 0, "prompt_type": "qwen"},
    )
    score = result["score"] if isinstance(result, dict) else result
    if not isinstance(score, (int, float)):
        errors.append(f"[3] the reward returned a non-numeric score: {result!r}")
        return
    lines.append(
        f"[3] reward OK: manager={manager.__name__} fn={fn_cfg.get('path')}:{fn_cfg.get('name')} "
        f"reward_kwargs={kwargs} sample score={score}"
    )


def _check_typed(cfg, errors: list[str], lines: list[str]) -> None:
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    omega_conf_to_dataclass(cfg.algorithm)
    rollout = omega_conf_to_dataclass(cfg.actor_rollout_ref.rollout)
    known = sorted(RolloutReplicaRegistry._registry)
    if rollout.name not in known:
        errors.append(f"[4] actor_rollout_ref.rollout.name={rollout.name!r} not in {known}")
        return
    lines.append(f"[4] typed algorithm/rollout configs OK; rollout backend: {rollout.name}")


def _missing_keys(cfg) -> list[str]:
    from omegaconf import OmegaConf

    missing = sorted(OmegaConf.missing_keys(cfg))
    if not cfg.reward.reward_model.get("enable", False):
        missing = [k for k in missing if not k.startswith("reward.reward_model.")]
    if not cfg.get("reward_model", {}).get("enable", False):
        missing = [k for k in missing if not k.startswith("reward_model.")]
    return missing


def _path_warnings(cfg) -> list[str]:
    warnings = []
    for key in ("train_files", "val_files"):
        files = cfg.data.get(key)
        files = [files] if isinstance(files, str) else list(files or [])
        warnings += [f"data.{key}: {f} does not exist here" for f in files if not os.path.exists(f)]
    model = cfg.actor_rollout_ref.model.path
    looks_local = model.startswith(("/", ".", "~")) or model.count("/") != 1
    if looks_local and not os.path.isdir(os.path.expanduser(model)):
        warnings.append(f"actor_rollout_ref.model.path: {model} is not a local folder (nor a hub id)")
    return warnings


def validate(
    overrides: list[str], base: str = "tool_n1", strict_paths: bool = False, config_dir=None, deps: bool = False
) -> tuple[bool, list[str]]:
    """Run every check; return (valid, report lines). Never raises on a bad config."""
    from omegaconf import OmegaConf

    lines: list[str] = []
    errors: list[str] = []
    try:
        cfg = compose(overrides, base=base, config_dir=config_dir)
    except Exception as exc:  # noqa: BLE001 - any composition failure is a verdict, not a crash
        return False, [f"[1] hydra compose FAILED: {_short(exc)}", "RESULT: INVALID"]
    lines.append(f"[1] hydra compose OK ({'verl ppo_trainer' if base == 'verl' else CONFIG_NAME})")

    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    try:
        use_ref, use_critic = need_reference_policy(cfg), need_critic(cfg)
        validate_config(cfg, use_reference_policy=use_ref, use_critic=use_critic)
        lines.append(f"[2] verl validate_config OK (need_ref={use_ref}, need_critic={use_critic})")
    except Exception as exc:  # noqa: BLE001
        errors.append(f"[2] verl validate_config FAILED: {_short(exc)}")
    for name, check in (("3", _check_reward), ("4", _check_typed)):
        try:
            check(cfg, errors, lines)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"[{name}] FAILED: {_short(exc)}")
    try:
        missing = _missing_keys(cfg)
    except Exception as exc:  # noqa: BLE001
        missing = [f"(could not list them: {_short(exc)})"]
    if missing:
        errors.append(f"[5] mandatory values missing (???): {missing}")
    else:
        lines.append("[5] no mandatory value left missing")

    try:
        warnings = _path_warnings(OmegaConf.create(OmegaConf.to_container(cfg, resolve=True)))
    except Exception as exc:  # noqa: BLE001 - e.g. tool_n1.data_dir missing, ${oc.env:MODEL_PATH} unset
        errors.append(f"[6] the config does not resolve: {_short(exc)}")
        warnings = []
    for warning in warnings:
        (errors if strict_paths else lines).append(f"[6] {'ERROR' if strict_paths else 'WARNING'}: {warning}")

    if deps:
        from preflight import check_dependencies

        try:
            dep_ok, dep_errors = check_dependencies(cfg)
        except Exception as exc:  # noqa: BLE001
            dep_ok, dep_errors = [], [f"could not check: {_short(exc)}"]
        lines += [f"[7] {line}" for line in dep_ok]
        errors += [f"[7] MISSING: {line}" for line in dep_errors]

    valid = not errors
    report = sorted(lines + errors, key=lambda line: line[:3])  # by check number, stable
    return valid, report + [f"RESULT: {'VALID' if valid else 'INVALID'}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
        allow_abbrev=False,
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as given to train_qwen.sh / main_ppo")
    parser.add_argument(
        "--base",
        choices=("tool_n1", "verl"),
        default="tool_n1",
        help="compose our config/tool_n1_grpo.yaml (default) or verl's own ppo_trainer (to check a raw command line)",
    )
    parser.add_argument("--config-dir", default=str(CONFIG_DIR), help="folder holding tool_n1_grpo.yaml")
    parser.add_argument("--strict-paths", action="store_true", help="missing data files / model folder are errors")
    parser.add_argument(
        "--deps",
        action="store_true",
        help="also check that this environment can run the profile (CUDA, vllm, flash_attn; or the CPU build)",
    )
    args = parser.parse_args(argv)
    valid, lines = validate(
        args.overrides, base=args.base, strict_paths=args.strict_paths, config_dir=args.config_dir, deps=args.deps
    )
    print("\n".join(lines))
    return 0 if valid else 1


if __name__ == "__main__":
    # run by path: sys.path[0] is this folder (no verl/ inside), so `import verl` finds the installed package
    sys.exit(main())
