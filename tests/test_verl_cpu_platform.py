"""The ``tool_n1_verl_cpu`` platform package: registration, version guards and each patch, without Ray (about 1 min).

    .venv/rl-vllm/bin/python -m pytest tests/test_verl_cpu_platform.py

Each check runs in a fresh interpreter with ``VERL_PLATFORM=cpu`` and ``VERL_USE_EXTERNAL_MODULES`` set, as verl's
workers are started.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.vllm_env

PROBE = textwrap.dedent(
    """
    import json, os
    import torch
    import verl  # imports tool_n1_verl_cpu through VERL_USE_EXTERNAL_MODULES
    from verl.plugin.platform import get_platform
    from verl.plugin.platform.platform_manager import PlatformRegistry
    from verl.utils.device import get_device_id, get_device_name, get_torch_device
    import verl.utils.distributed as distributed
    import verl.utils.fsdp_utils as fsdp_utils

    os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["PROBE_PORT"])
    distributed.initialize_global_process_group_ray()
    backend = torch.distributed.get_backend()
    torch.distributed.destroy_process_group()

    import vllm.model_executor.layers.utils as layer_utils
    import tool_n1_verl_cpu

    tool_n1_verl_cpu.activate()  # vllm is imported now: the vLLM patch applies
    layer = torch.nn.Linear(64, 32)
    weight = layer.weight
    layer_utils.dispatch_cpu_unquantized_gemm(layer, remove_weight=True)
    print(json.dumps({
        "registered": "cpu" in PlatformRegistry.registered_names(),
        "platform": type(get_platform()).__name__,
        "device": get_device_name(),
        "device_id": get_device_id(),
        "tensor_on_id": str(torch.zeros(1).to(get_device_id()).device),
        "memory": get_torch_device().memory_allocated(),
        "backend": backend,
        "engine_device": os.environ.get("VERL_ENGINE_DEVICE"),
        "pinned": fsdp_utils.CPUOffloadPolicy(pin_memory=True).pin_memory,
        "linear_kept_weight": layer.weight is weight and layer.weight.numel() == 64 * 32,
        "linear_is_f_linear": layer.cpu_linear is torch.nn.functional.linear,
    }))
    """
)


def _run(code: str, **env_extra) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "VERL_PLATFORM": "cpu",
        "VERL_USE_EXTERNAL_MODULES": "tool_n1_verl_cpu",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
        **env_extra,
    }
    env.pop("VERL_ENGINE_DEVICE", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)


def test_platform_and_patches_in_a_verl_process():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run = _run(PROBE, PROBE_PORT=str(port))
    assert run.returncode == 0, run.stderr[-3000:]
    probe = json.loads(run.stdout.strip().splitlines()[-1])
    assert probe == {
        "registered": True,
        "platform": "PlatformCPU",
        "device": "cpu",
        "device_id": "cpu",
        "tensor_on_id": "cpu",
        "memory": 0,
        "backend": "gloo",  # not "cpu:gloo,cpu:gloo" (verl/utils/distributed.py:89)
        "engine_device": "cuda",
        "pinned": False,
        "linear_kept_weight": True,
        "linear_is_f_linear": True,
    }


def test_version_and_source_guards_fail_clearly():
    code = textwrap.dedent(
        """
        from tool_n1_verl_cpu import patches
        try:
            patches.PINNED_VERSIONS["verl"] = "0.0.1"
            patches.check_pinned_version("verl")
        except patches.PinnedVersionError as exc:
            print("version:", exc)
        try:
            patches.require_source_line("verl.utils.distributed", 89, "something else")
        except patches.PinnedVersionError as exc:
            print("source:", exc)
        """
    )
    run = _run(code, VERL_USE_EXTERNAL_MODULES="", VERL_PLATFORM="")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "version: tool_n1_verl_cpu patches verl 0.0.1 internals but 0.9.1 is installed" in run.stdout
    assert "distributed.py:89 is 'backend = backend or" in run.stdout and "expected 'something else'" in run.stdout


def test_platform_is_never_auto_detected():
    code = "import verl\nfrom verl.plugin.platform import get_platform\nprint(type(get_platform()).__name__)"
    run = _run(code, VERL_PLATFORM="")
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] != "PlatformCPU"


def test_lora_preset_validates_with_vllm(tmp_path):
    """The LoRA-GRPO preset composes and passes verl's own checks (its LoRA checks read the installed vllm)."""
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "verl" / "validate_config.py"),
            f"tool_n1.data_dir={tmp_path}",
            "+ablation=lora_grpo",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert run.returncode == 0 and "RESULT: VALID" in run.stdout, run.stdout + run.stderr
