"""verl's ``cpu`` platform: a ``PlatformBase`` registered in verl's ``PlatformRegistry`` under the name ``cpu``.

Selected with ``VERL_PLATFORM=cpu`` (verl/plugin/platform/platform_manager.py reads it before auto-detection). Device
``cpu``, collective backend ``gloo``, a device module backed by ``torch.cpu`` whose memory and stream helpers are
no-ops, and the Ray resource ``GPU``: verl's resource pools count only Ray ``GPU``/``NPU`` resources
(verl/single_controller/ray/base.py:226-242), so the CPU profile starts Ray with ``ray_init.num_gpus=N``, a logical
resource that nothing maps to a device.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

CPU_DEVICE_ID = "cpu"  # what get_device_id() returns: `.to(id)`, `torch.device(id)` and `device=id` all mean the CPU


def _host_memory() -> tuple[int, int]:
    """(free, total) bytes of host memory, for verl's ``mem_get_info`` logging."""
    page = os.sysconf("SC_PAGE_SIZE")
    return os.sysconf("SC_AVPHYS_PAGES") * page, os.sysconf("SC_PHYS_PAGES") * page


def _zero(*_args, **_kwargs) -> int:
    return 0


def _noop(*_args, **_kwargs) -> None:
    return None


def cpu_device_module() -> SimpleNamespace:
    """``torch.cpu`` plus the ``torch.cuda``-style functions verl calls on ``get_torch_device()``.

    Memory statistics are 0, cache and allocator calls are no-ops, RNG state is torch's global (CPU) RNG.
    """
    module = SimpleNamespace(**{name: getattr(torch.cpu, name) for name in dir(torch.cpu) if not name.startswith("_")})
    module.current_device = lambda: CPU_DEVICE_ID
    module.set_device = _noop
    module.empty_cache = _noop
    module.ipc_collect = _noop
    module.reset_peak_memory_stats = _noop
    module.set_per_process_memory_fraction = _noop
    module.memory_allocated = _zero
    module.memory_reserved = _zero
    module.max_memory_allocated = _zero
    module.max_memory_reserved = _zero
    module.memory_stats = lambda *_a, **_k: {}
    module.mem_get_info = lambda *_a, **_k: _host_memory()
    module.get_device_name = lambda *_a, **_k: "cpu"
    module.manual_seed = torch.manual_seed
    module.manual_seed_all = torch.manual_seed
    module.get_rng_state = lambda *_a, **_k: torch.get_rng_state()
    module.set_rng_state = lambda state, *_a, **_k: torch.set_rng_state(state)
    return module


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    """verl on a machine without accelerators: FSDP2 over gloo, vLLM's CPU build for the rollout."""

    _device_module = None

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self):
        if PlatformCPU._device_module is None:
            PlatformCPU._device_module = cpu_device_module()
        return PlatformCPU._device_module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check=False) -> bool:
        return False  # never auto-detected: only VERL_PLATFORM=cpu selects it

    def current_device(self):
        return CPU_DEVICE_ID

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index) -> None:
        return None

    def synchronize(self, device_index=None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0):
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets it for actors holding the logical GPU resource; verl's vLLM server reads it back. No GPU is used.
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False  # verl then sends weights to vLLM through shared memory, not CUDA IPC handles

    def cudart(self):
        return None
