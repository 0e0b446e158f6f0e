"""verl/model_convert.py on real FSDP1 and FSDP2 checkpoints (2 ranks over gloo on CPU, verl's layout) -> HF.

FSDP2 (``fsdp2``, the CPU profile): ``fully_shard`` on CPU, its DTensor state dict. FSDP1 (``fsdp``, the recipe's
GPU default) cannot be built without an accelerator ("FSDP needs a non-CPU accelerator device"), so its layout is
written with the function FSDP1's ``SHARDED_STATE_DICT`` uses for every parameter when a device mesh is given, as
verl's engine gives one (torch's ``_create_chunk_dtensor``: Shard(0) chunks), plus ``FSDP_version: 1``.

The merger writes bfloat16. The logits are compared (a) exactly-ish (atol 1e-5) with the source model after rounding
its weights to bf16, and (b) within a bf16 tolerance (2e-2 of the largest logit) with the float32 source.
"""

import os
import subprocess
import sys
import textwrap

import pytest
from tiny_model import build_tiny_qwen2, build_tiny_tokenizer

from tests.conftest import REPO

pytestmark = pytest.mark.rl_env

WORKER = textwrap.dedent(
    """
    # writes <out>/model_world_size_W_rank_R.pt (DTensor shards), fsdp_config.json and huggingface/, as verl's
    # FSDPCheckpointManager does
    import json, os, sys
    import torch, torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.fsdp._shard_utils import _create_chunk_dtensor
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src, out, version = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    mesh = init_device_mesh("cpu", (world,), mesh_dim_names=("fsdp",))
    os.makedirs(out, exist_ok=True)
    shard = os.path.join(out, f"model_world_size_{world}_rank_{rank}.pt")
    if version == 2:
        for layer in model.model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        torch.save(model.state_dict(), shard)
    else:  # FSDP1's SHARDED_STATE_DICT with a device mesh (torch/distributed/fsdp/_state_dict_utils.py)
        torch.save({k: _create_chunk_dtensor(v, rank, mesh) for k, v in model.state_dict().items()}, shard)
    if rank == 0:
        with open(os.path.join(out, "fsdp_config.json"), "w") as f:
            json.dump({"FSDP_version": version, "world_size": world}, f)
        AutoConfig.from_pretrained(src).save_pretrained(os.path.join(out, "huggingface"))
        AutoTokenizer.from_pretrained(src).save_pretrained(os.path.join(out, "huggingface"))
    dist.barrier()
    dist.destroy_process_group()
    """
)


def _logits(model_dir, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Weather in Paris?"}], add_generation_prompt=True, tokenize=False
    )
    with torch.no_grad():
        return model(**tokenizer(text, return_tensors="pt")).logits


# about 30 s each on 2 CPU cores (two torch ranks + the merger, each a fresh interpreter); runs in CI
@pytest.mark.parametrize("fsdp_version", [1, 2])
def test_fsdp_checkpoint_to_hf(tmp_path, fsdp_version):
    import torch

    source = tmp_path / "source"
    tokenizer = build_tiny_tokenizer(source)
    model = build_tiny_qwen2(source, tokenizer)
    bf16_ref = tmp_path / "source_bf16"  # the same weights rounded to bf16, stored as fp32
    model.to(torch.bfloat16).to(torch.float32).save_pretrained(str(bf16_ref))
    tokenizer.save_pretrained(str(bf16_ref))

    experiment = tmp_path / "checkpoints" / "tool_n1" / "tiny"
    actor = experiment / "global_step_2" / "actor"
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    run = subprocess.run(
        [*cmd, str(tmp_path / "worker.py"), str(source), str(actor), str(fsdp_version)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(os.listdir(actor)) == [
        "fsdp_config.json",
        "huggingface",
        "model_world_size_2_rank_0.pt",
        "model_world_size_2_rank_1.pt",
    ]
    (experiment / "latest_checkpointed_iteration.txt").write_text("2")

    target = tmp_path / "hf"
    convert = subprocess.run(
        [
            sys.executable,
            "model_convert.py",
            "--local_dir",
            str(experiment),
            "--target_dir",
            str(target),
            "--reference_dir",
            str(bf16_ref),
            "--rtol",
            "1e-5",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=REPO / "verl",  # cd verl; python model_convert.py
    )
    assert convert.returncode == 0, convert.stdout[-3000:] + convert.stderr[-3000:]
    assert "RESULT: OK" in convert.stdout and str(actor) in convert.stdout
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(os.listdir(target))

    from safetensors import safe_open

    with safe_open(str(target / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}  # the merger writes bf16
    merged = _logits(target, tokenizer)
    torch.testing.assert_close(merged, _logits(bf16_ref, tokenizer), atol=1e-5, rtol=0)
    fp32 = _logits(source, tokenizer)
    assert (merged - fp32).abs().max() <= 2e-2 * fp32.abs().max()


def test_model_convert_help_and_bad_dir(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "verl" / "model_convert.py"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "--local_dir" in out.stdout and "python model_convert.py" in out.stdout
    out = subprocess.run(
        [sys.executable, str(REPO / "verl" / "model_convert.py"), "--local_dir", str(tmp_path), "--target_dir", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0 and "no verl FSDP checkpoint" in out.stderr
