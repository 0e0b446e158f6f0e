"""FSDP checkpoint of a Tool-N1 GRPO run -> Hugging Face model folder, through verl's own model merger, then checked.

    cd verl && python model_convert.py \\
        --checkpoint ../checkpoints/tool_n1/qwen2.5_7b_grpo/global_step_140/actor \\
        --output-dir ../outputs/hf/tool_n1_7b
    python verl/model_convert.py --checkpoint checkpoints/tool_n1/qwen2.5_7b_grpo --output-dir outputs/hf/tool_n1_7b
    python verl/model_convert.py --checkpoint ... --output-dir ... --reference-dir <hf folder with the same weights>

``--local_dir`` / ``--target_dir`` (verl's merger spellings) are aliases of ``--checkpoint`` / ``--output-dir``.

``--checkpoint`` is the ``actor`` folder verl writes (``fsdp_config.json``, ``model_world_size_W_rank_R.pt``,
``huggingface/``), its ``global_step_N`` parent, or the experiment folder (then the latest step, from
``latest_checkpointed_iteration.txt``). The merge is verl's ``FSDPModelMerger`` -- the same code as
``python -m verl.model_merger merge --backend fsdp --local_dir <actor> --target_dir <out>`` -- which writes
**bfloat16** safetensors plus the tokenizer and chat template.

Then the check: the folder must load with ``AutoConfig`` / ``AutoTokenizer`` / ``AutoModelForCausalLM``, and one
forward pass on a chat-templated prompt must give finite logits. With ``--reference_dir`` the logits are compared with
that model's on the same input (both in float32), within ``--rtol`` of the reference's largest logit (default 2e-2,
a bf16 tolerance: the merged weights are bf16). ``--skip_check`` skips it (e.g. a 14B model on a small CPU host).
Exit status 0 when the merge and the check pass.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path


def resolve_actor_dir(local_dir: str | Path) -> Path:
    """The folder with ``fsdp_config.json``: ``local_dir`` itself, its ``actor/``, or the latest step's ``actor/``."""
    path = Path(local_dir).expanduser().resolve()
    if path.name == "huggingface":
        raise SystemExit(f"--local_dir must be the actor folder, not its huggingface/ subfolder: {path}")
    for candidate in (path, path / "actor"):
        if (candidate / "fsdp_config.json").is_file():
            return candidate
    latest = path / "latest_checkpointed_iteration.txt"
    if latest.is_file():
        step = latest.read_text().strip()
    else:
        steps = sorted(
            int(m.group(1)) for p in path.glob("global_step_*") if (m := re.fullmatch(r"global_step_(\d+)", p.name))
        )
        if not steps:
            raise SystemExit(f"no verl FSDP checkpoint under {path} (no fsdp_config.json, no global_step_*)")
        step = str(steps[-1])
    actor = path / f"global_step_{step}" / "actor"
    if not (actor / "fsdp_config.json").is_file():
        raise SystemExit(f"no fsdp_config.json in {actor}")
    return actor


def merge(actor_dir: Path, target_dir: Path, hf_upload_path: str | None = None, trust_remote_code: bool = False):
    """verl's FSDP merger, called as ``python -m verl.model_merger merge --backend fsdp`` would call it."""
    from verl.model_merger.base_model_merger import ModelMergerConfig
    from verl.model_merger.fsdp_model_merger import FSDPModelMerger

    target_dir.mkdir(parents=True, exist_ok=True)
    config = ModelMergerConfig(
        operation="merge",
        backend="fsdp",
        local_dir=str(actor_dir),
        target_dir=str(target_dir),
        hf_model_config_path=str(actor_dir / "huggingface"),
        hf_upload_path=hf_upload_path,
        trust_remote_code=trust_remote_code,
    )
    merger = FSDPModelMerger(config)
    merger.merge_and_save()
    merger.cleanup()


def _logits(model_dir: Path, tokenizer, device: str, trust_remote_code: bool):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch.float32, trust_remote_code=trust_remote_code
    )
    model.to(device).eval()
    messages = [
        {"role": "system", "content": "You are a helpful assistant that can call tools."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    else:
        text = "\n".join(m["content"] for m in messages)
    inputs = tokenizer(text, return_tensors="pt").to(device)
    with torch.no_grad():
        return model(**inputs).logits.float().cpu()


def check(
    target_dir: Path, reference_dir: Path | None, rtol: float, device: str, trust_remote_code: bool
) -> list[str]:
    """Load the merged folder and run one forward; compare with ``reference_dir`` if given. Returns error lines."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    AutoConfig.from_pretrained(str(target_dir), trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(str(target_dir), trust_remote_code=trust_remote_code)
    logits = _logits(target_dir, tokenizer, device, trust_remote_code)
    print(f"[check] loaded {target_dir}: logits {tuple(logits.shape)}, finite={bool(torch.isfinite(logits).all())}")
    if not torch.isfinite(logits).all():
        return ["merged model gives non-finite logits"]
    if reference_dir is None:
        return []
    ref = _logits(reference_dir, tokenizer, device, trust_remote_code)
    if ref.shape != logits.shape:
        return [f"logits shape {tuple(logits.shape)} != reference {tuple(ref.shape)}"]
    diff = (logits - ref).abs().max().item()
    scale = ref.abs().max().item()
    print(
        f"[check] vs {reference_dir}: max |logit diff| = {diff:.3e} (reference max |logit| {scale:.3e}, rtol {rtol})"
    )
    return [] if diff <= rtol * max(scale, 1e-6) else [f"logits differ from the reference by {diff:.3e}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--checkpoint",
        "--local_dir",
        dest="local_dir",
        required=True,
        help="actor/ folder, global_step_N/ folder or experiment folder (--local_dir: verl's merger spelling)",
    )
    parser.add_argument(
        "--output-dir",
        "--target_dir",
        dest="target_dir",
        required=True,
        help="where the Hugging Face folder is written (--target_dir: verl's merger spelling)",
    )
    parser.add_argument(
        "--reference-dir",
        "--reference_dir",
        dest="reference_dir",
        default=None,
        help="HF folder whose logits the merged model should match",
    )
    parser.add_argument(
        "--rtol", type=float, default=2e-2, help="allowed max |diff| relative to max |reference logit|"
    )
    parser.add_argument("--device", default=None, help="device for the check [cuda if available, else cpu]")
    parser.add_argument(
        "--skip-check",
        "--skip_check",
        dest="skip_check",
        action="store_true",
        help="merge only; do not load the result",
    )
    parser.add_argument(
        "--hf-upload-path",
        "--hf_upload_path",
        dest="hf_upload_path",
        default=None,
        help="also upload to this hub repo (verl's merger does it)",
    )
    parser.add_argument("--trust-remote-code", "--trust_remote_code", dest="trust_remote_code", action="store_true")
    args = parser.parse_args(argv)

    actor_dir = resolve_actor_dir(args.local_dir)
    target_dir = Path(args.target_dir).expanduser().resolve()
    start = time.time()
    print(f"[merge] {actor_dir} -> {target_dir} (verl FSDPModelMerger, bf16)")
    merge(actor_dir, target_dir, args.hf_upload_path, args.trust_remote_code)
    print(f"[merge] done in {time.time() - start:.1f}s: {sorted(p.name for p in target_dir.iterdir())}")
    if args.skip_check:
        return 0
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    reference = Path(args.reference_dir).expanduser().resolve() if args.reference_dir else None
    errors = check(target_dir, reference, args.rtol, device, args.trust_remote_code)
    for error in errors:
        print(f"[check] FAILED: {error}")
    print("RESULT: OK" if not errors else "RESULT: FAILED")
    return 1 if errors else 0


if __name__ == "__main__":
    # run by path: sys.path[0] is this folder (no verl/ inside), so `import verl` finds the installed package
    sys.exit(main())
