"""Distilled trajectories -> LLaMA-Factory alpaca data for the SFT baselines of paper Table 3.

Reads the append-only JSONL written by ``data_process/distill_data.py`` (one line per attempted sample; only lines
with ``"status": "kept"`` become training rows) and writes, into ``--output-dir``:

* ``tool_sft_reason_{50,100}.json`` -- **Reason-SFT**: target = the teacher output cut right after the first
  ``</tool_call>`` (``<think>...</think> <tool_call>[...]</tool_call>``), as the original ``lam_data_process.py``;
* ``tool_sft_noreason_{50,100}.json`` -- **No-Reason-SFT**: the same target with everything up to the first
  ``</think>`` removed (leading newlines stripped) and the system prompt's "In each action step, you MUST" block
  replaced by the original's no-think instruction (:data:`NO_REASON_INSTRUCTION`), as ``get_raw_sft_data.py``;
* ``dataset_info.json`` -- merged: one entry per file (alpaca columns ``prompt->instruction``, ``query->query``,
  ``response->output``, ``system->system_prompt``); unchanged for the default flags (the committed file);
* ``tool_sft_manifest.json`` -- counts (every input line is converted or counted under a reason), the seed, the keys
  of every subset in file order, the keys of the other half (``rl_rest_50``: the RL half of "Reason-SFT+RL
  50%+50%"), target checks and, with ``--tokenizer``, token lengths against ``--cutoff-len``.

Rows: ``{"system_prompt", "query", "output", "instruction": ""}`` (the original's layout; LLaMA-Factory joins the
empty instruction away, so the user turn is the query). System prompt (``--prompt``):

* ``distill`` (default): the prompt the teacher saw, cut to start at "You are an expert in composing functions"
  (the original did this to drop the distillation prompt's leading newline and indentation);
* ``train``: the RL training system message (``tool_n1.prompts.training_system_prompt``, the one in the verl
  parquet), so SFT and RL see the same prompt. Lines distilled with ``--prompt train`` already carry it; otherwise
  pass ``--records`` (the unified JSONL that was distilled) so tools and preamble come from the record.

Subsets: the kept samples are sorted by key, shuffled with ``random.Random(--seed)``, and the first
``round(fraction * n)`` form each subset, so 50 % is a subset of 100 %, Reason and No-Reason use the same samples,
and the result does not depend on the (concurrent) order of the distillation journal.

Run from ``LLaMA-Factory/`` (the defaults read ``../data/distill.jsonl`` and write ``data/``)::

    python data_process.py --input ../data/distill.jsonl --output-dir data --seed 42 \\
        --tokenizer /path/to/Qwen2.5-7B-Instruct --cutoff-len 2048

Needs only the standard library and the core package ``tool_n1``; ``--tokenizer`` also needs ``transformers``
(the SFT environment ``.venv/sft``). Exit status: 0 on success, 2 on a usage or input error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
try:
    import tool_n1  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO / "src"))

from tool_n1.distillation import load_samples  # noqa: E402
from tool_n1.prompts import (  # noqa: E402
    DEFAULT_PREAMBLE,
    ROLE,
    distillation_system_prompt,
    no_reason_system_prompt,
    training_system_prompt,
)
from tool_n1.reward import compute_score  # noqa: E402

#: Where the faithful system prompt starts (``lam_data_process.py``'s marker).
EXPERT_MARKER = "You are an expert in composing functions"
assert ROLE.startswith(EXPERT_MARKER)
TOOL_CALL_END = "</tool_call>"
THINK_END = "</think>"
VARIANTS = ("reason", "noreason")
#: Reward variant that checks a target of each kind (Reason-SFT needs the think tags, No-Reason-SFT must not).
CHECK_VARIANT = {"reason": "binary", "noreason": "binary_no_think"}
ALPACA_COLUMNS = {"prompt": "instruction", "query": "query", "response": "output", "system": "system_prompt"}
MANIFEST = "tool_sft_manifest.json"


# --------------------------------------------------------------------------- conversions (pure functions)
def truncate_after_first_tool_call(text: str) -> str:
    """Everything up to and including the first ``</tool_call>`` (the whole text when there is none)."""
    index = text.find(TOOL_CALL_END)
    return text if index == -1 else text[: index + len(TOOL_CALL_END)]


def faithful_system_prompt(system: str) -> str:
    """The distillation prompt from "You are an expert in composing functions" on (unchanged when absent)."""
    index = system.find(EXPERT_MARKER)
    return system if index == -1 else system[index:]


def strip_reasoning(output: str) -> str:
    """Drop everything up to and including the first ``</think>``, then leading newlines (not spaces), as the
    original. Unlike the original (which then cut 7 characters), a text without ``</think>`` is kept whole."""
    index = output.find(THINK_END)
    return (output if index == -1 else output[index + len(THINK_END) :]).lstrip("\n")


def reason_row(system: str, query: str, output: str) -> dict[str, str]:
    """A Reason-SFT alpaca row (``system`` already in its final form)."""
    return {
        "system_prompt": system,
        "query": query,
        "output": truncate_after_first_tool_call(output),
        "instruction": "",
    }


def no_reason_row(reason: dict[str, str]) -> dict[str, str]:
    """The No-Reason-SFT row made from a Reason-SFT row (``get_raw_sft_data.py`` ran on ``tool_sft.json``)."""
    return {
        "system_prompt": no_reason_system_prompt(reason["system_prompt"]),
        "query": reason["query"],
        "output": strip_reasoning(reason["output"]),
        "instruction": "",
    }


def subset_name(variant: str, fraction: float) -> str:
    return f"tool_sft_{variant}_{percent(fraction)}"


def percent(fraction: float) -> int:
    return int(round(fraction * 100))


def subset_size(n: int, fraction: float) -> int:
    return min(n, int(math.floor(fraction * n + 0.5)))


def shuffled_keys(keys: list[str], seed: int) -> list[str]:
    """Keys sorted, then shuffled with ``random.Random(seed)``: a subset is a prefix of this order."""
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    return order


def dataset_info_entries(fractions: list[float], variants: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    return {
        subset_name(v, f): {"file_name": f"{subset_name(v, f)}.json", "columns": dict(ALPACA_COLUMNS)}
        for v in variants
        for f in fractions
    }


# --------------------------------------------------------------------------- reading the journal
class TrainPrompts:
    """The RL training system message of a distilled sample (``--prompt train``)."""

    def __init__(self, records: str | None, source_ids: set[str], dedupe: bool):
        self.dedupe = dedupe
        self.by_key: dict[str, dict[str, Any]] | None = None
        if records:
            samples, _ = load_samples(records, source_ids or None, None)
            self.by_key = {s["key"]: s for s in samples}

    def __call__(self, line: dict[str, Any]) -> tuple[str | None, str]:
        """(system prompt, "") or (None, reason)."""
        prompt = line.get("prompt")
        kind = prompt.get("kind") if isinstance(prompt, dict) else None
        if self.by_key is None:
            if kind == "train" and not self.dedupe:
                return line["system_prompt"], ""
            return None, "train_prompt_needs_records"
        sample = self.by_key.get(line.get("key"))
        if sample is None:
            return None, "key_not_in_records"
        tools = sample["tools"]
        preamble = sample["raw_system"] if isinstance(sample.get("raw_system"), str) and sample["raw_system"] else None
        preamble = preamble or DEFAULT_PREAMBLE
        # the line must be the record's sample: same query, same prompt as tool_n1.distillation.system_prompt built it
        seen = training_system_prompt(tools, preamble) if kind == "train" else distillation_system_prompt(tools)
        if line["system_prompt"] != seen or line["query"] != sample["query"]:
            return None, "record_differs_from_line"
        return training_system_prompt(tools, preamble, dedupe=self.dedupe), ""


#: The journal fields that end up in the SFT files (the key in the manifest).
TEXT_FIELDS = ("key", "system_prompt", "query", "output")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_kept(path: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], Counter[str], int]:
    """Kept samples ``{"key", "answer", "reason"(row)}`` in file order, excluded lines by reason, lines read."""
    excluded: Counter[str] = Counter()
    parsed: list[dict[str, Any]] = []
    n = 0
    with open(path, "rb") as handle:
        for raw_bytes in handle:
            n += 1
            try:
                raw = raw_bytes.decode("utf-8")
            except UnicodeDecodeError:
                excluded["invalid_utf8"] += 1
                continue
            if not raw.strip():
                excluded["blank_line"] += 1
                continue
            try:
                line = json.loads(raw)
            except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the interpreter allows
                excluded["not_json"] += 1
                continue
            if not isinstance(line, dict):
                excluded["not_an_object"] += 1
                continue
            status = line.get("status")
            if status != "kept":
                known = isinstance(status, str) and status in ("dropped", "failed")
                excluded[f"status_{status}" if known else "status_unknown"] += 1
                continue
            missing = [f for f in TEXT_FIELDS if not isinstance(line.get(f), str)]
            if missing:
                excluded[f"missing_{missing[0]}"] += 1
                continue
            if any(not _encodable(line[f]) for f in TEXT_FIELDS):
                excluded["lone_surrogate"] += 1  # a "\ud800" escape: valid JSON, but no UTF-8 file can hold it
                continue
            parsed.append(line)

    train = None
    if args.prompt == "train":
        train = TrainPrompts(
            args.records, {str(x.get("source_id")) for x in parsed if x.get("source_id")}, args.dedupe
        )
    samples: list[dict[str, Any]] = []
    seen: set[str] = set()
    for line in parsed:
        if line["key"] in seen:
            excluded["duplicate_key"] += 1
            continue
        if train is None:
            system = faithful_system_prompt(line["system_prompt"])
        else:
            system, why = train(line)
            if system is None:
                excluded[why] += 1
                continue
        seen.add(line["key"])
        samples.append(
            {
                "key": line["key"],
                "answer": line.get("answer"),
                "reason": reason_row(system, line["query"], line["output"]),
            }
        )
    return samples, excluded, n


def check_target(output: str, answer: Any, variant: str) -> str:
    """'' when the target alone earns reward 1 against the answer (else the reason), using ``tool_n1.reward``."""
    if answer is None:
        return "no_answer"
    result = compute_score("toolcall", output, json.dumps(answer), variant=CHECK_VARIANT[variant])
    if result["score"] >= 1:
        return ""
    if not result["call_parsed"]:
        return "target_call_not_parsed"
    if variant == "reason" and not result["format_ok"]:
        return "target_format"
    return "target_call_mismatch"


# --------------------------------------------------------------------------- token lengths
class TokenCounter:
    """Token count of a row exactly as LLaMA-Factory's ``qwen`` template encodes it.

    Each formatted slot is encoded on its own with ``add_special_tokens=False`` and the ids are concatenated
    (``Template._convert_elements_to_ids``): system ``<|im_start|>system\\n…<|im_end|>\\n``, user
    ``<|im_start|>user\\n…<|im_end|>\\n<|im_start|>assistant\\n``, assistant ``…<|im_end|>\\n``.
    """

    def __init__(self, tokenizer: str):
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer)

    def _n(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt(self, row: dict[str, str]) -> int:
        user = "\n".join(x for x in (row["instruction"], row["query"]) if x)  # the alpaca converter's join
        system = f"<|im_start|>system\n{row['system_prompt']}<|im_end|>\n"
        return self._n(system) + self._n(f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")

    def response(self, row: dict[str, str]) -> int:
        return self._n(f"{row['output']}<|im_end|>\n")


def length_report(lengths: list[tuple[int, int]], cutoff: int) -> dict[str, Any]:
    totals = sorted(p + r for p, r in lengths)

    def q(x: float) -> int:
        return totals[min(len(totals) - 1, int(x * len(totals)))] if totals else 0

    return {
        "rows": len(totals),
        "over_cutoff": sum(t > cutoff for t in totals),
        "prompt_over_cutoff": sum(p >= cutoff for p, _ in lengths),
        "max": totals[-1] if totals else 0,
        "p50": q(0.5),
        "p95": q(0.95),
        "p99": q(0.99),
    }


# --------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring and LLaMA-Factory/README.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument(
        "--input", default=str(REPO / "data" / "distill.jsonl"), help="distillation JSONL (distill_data.py)"
    )
    p.add_argument("--output-dir", default=str(HERE / "data"), help="LLaMA-Factory dataset_dir to write into")
    p.add_argument("--seed", type=int, default=42, help="seed of the subset shuffle")
    p.add_argument(
        "--fractions",
        type=float,
        nargs="+",
        default=[0.5, 1.0],
        metavar="F",
        help="subset sizes as fractions of the kept samples (Table 3: 0.5 and 1.0); file suffix = percent",
    )
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="which data to write")
    p.add_argument(
        "--prompt",
        choices=("distill", "train"),
        default="distill",
        help="system prompt: distill = the teacher's distillation prompt cut at 'You are an expert…' (the "
        "original), train = the RL training one",
    )
    p.add_argument(
        "--records",
        default=None,
        metavar="JSONL",
        help="--prompt train: the unified records that were distilled (tools + preamble, matched by sample key)",
    )
    p.add_argument(
        "--dedupe-tool-intro",
        dest="dedupe",
        action="store_true",
        help="--prompt train: drop the duplicated 'Here is a list of functions' sentence (parquet --mode improved)",
    )
    p.add_argument(
        "--drop-mismatched",
        action="store_true",
        help="drop samples whose converted target (cut at the first </tool_call>) no longer earns reward 1 "
        "(default: keep them, as the original, and count them in the manifest)",
    )
    p.add_argument("--tokenizer", default=None, help="tokenizer (local folder or name) to count tokens per row")
    p.add_argument("--cutoff-len", type=int, default=2048, help="LLaMA-Factory cutoff_len to count rows against")
    p.add_argument(
        "--drop-overlong",
        action="store_true",
        help="with --tokenizer: drop samples whose row (any of --variants) exceeds --cutoff-len (default: keep; "
        "LLaMA-Factory then truncates the prompt's end first)",
    )
    return p


class FileSet:
    """Output files written as a set: each to a temporary name beside it, all renamed at the end by :meth:`commit`.

    A run that stops earlier (an exception, a kill) leaves the previous set whole, never the 50 % file of one run
    beside the 100 % file of another; :meth:`discard` removes the temporary files of a failed run.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path]] = []

    def write_json(self, path: Path, value: Any, indent: int | None = 2) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.pending.append((tmp, path))
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(value, ensure_ascii=False, indent=indent) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def commit(self) -> None:
        for tmp, path in self.pending:
            os.replace(tmp, path)
        self.pending = []

    def discard(self) -> None:
        for tmp, _ in self.pending:
            tmp.unlink(missing_ok=True)
        self.pending = []


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    if any(not 0 < f <= 1 for f in args.fractions):
        print("error: --fractions must lie in (0, 1]", file=sys.stderr)
        return 2
    if args.drop_overlong and not args.tokenizer:
        print("error: --drop-overlong needs --tokenizer", file=sys.stderr)
        return 2
    if (args.records or args.dedupe) and args.prompt != "train":
        print("error: --records and --dedupe-tool-intro only apply to --prompt train", file=sys.stderr)
        return 2
    fractions = sorted(set(args.fractions))
    variants = tuple(v for v in VARIANTS if v in args.variants)
    try:
        samples, excluded, n_lines = read_kept(args.input, args)
    except OSError as exc:
        print(f"error: cannot read --input: {exc}", file=sys.stderr)
        return 2

    rows: dict[str, dict[str, dict[str, str]]] = {"reason": {}, "noreason": {}}
    checks: dict[str, Counter[str]] = {v: Counter() for v in VARIANTS}
    for sample in samples:
        reason = sample["reason"]
        candidate = {"reason": reason, "noreason": no_reason_row(reason)}
        problems = {v: check_target(candidate[v]["output"], sample["answer"], v) for v in variants}
        for v, why in problems.items():
            checks[v][why or "ok"] += 1
        if args.drop_mismatched and any(problems.values()):
            excluded["mismatched_target"] += 1
            continue
        for v in VARIANTS:
            rows[v][sample["key"]] = candidate[v]

    lengths: dict[str, dict[str, tuple[int, int]]] = {}
    if args.tokenizer:
        counter = TokenCounter(args.tokenizer)
        for v in variants:
            lengths[v] = {k: (counter.prompt(r), counter.response(r)) for k, r in rows[v].items()}
        if args.drop_overlong:
            over = {k for v in variants for k, (p, r) in lengths[v].items() if p + r > args.cutoff_len}
            for key in sorted(over):
                excluded["over_cutoff_len"] += 1
                for v in VARIANTS:
                    rows[v].pop(key, None)

    order = shuffled_keys(list(rows["reason"]), args.seed)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = FileSet()
    try:
        subsets = write_subsets(files, out, args, order, rows, lengths, fractions, variants)
        converted = len(rows["reason"])
        summary = {
            "input": str(args.input),
            "input_sha256": hashlib.sha256(Path(args.input).read_bytes()).hexdigest(),
            "output_dir": str(out),
            "seed": args.seed,
            "prompt": args.prompt,
            "dedupe_tool_intro": args.dedupe,
            "lines_read": n_lines,
            "samples_converted": converted,
            "lines_excluded": sum(excluded.values()),
            "excluded_by_reason": dict(sorted(excluded.items())),
            "target_checks": {v: dict(sorted(checks[v].items())) for v in variants},
            "tokenizer": args.tokenizer,
            "cutoff_len": args.cutoff_len,
            "files": {name: {k: v for k, v in s.items() if k != "keys"} for name, s in subsets.items()},
            "wall_s": round(time.monotonic() - started, 3),
        }
        assert converted + summary["lines_excluded"] == n_lines, "every input line is converted or counted"
        files.write_json(out / MANIFEST, summary | {"subsets": subsets})
        files.commit()
    finally:
        files.discard()
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    for name, info in summary["files"].items():
        if info.get("tokens", {}).get("over_cutoff"):
            over, rows_n = info["tokens"]["over_cutoff"], info["rows"]
            print(f"warning: {name}: {over} of {rows_n} rows exceed cutoff_len={args.cutoff_len}", file=sys.stderr)
    if not args.tokenizer:
        print(f"note: pass --tokenizer to count rows longer than cutoff_len={args.cutoff_len}", file=sys.stderr)
    return 0


def write_subsets(
    files: FileSet,
    out: Path,
    args: argparse.Namespace,
    order: list[str],
    rows: dict[str, dict[str, dict[str, str]]],
    lengths: dict[str, dict[str, tuple[int, int]]],
    fractions: list[float],
    variants: tuple[str, ...],
) -> dict[str, Any]:
    """Write every subset file (and the merged dataset_info.json) into ``files``; returns the manifest's subsets."""
    subsets: dict[str, Any] = {}
    for fraction in fractions:
        keys = order[: subset_size(len(order), fraction)]
        for v in variants:
            name = subset_name(v, fraction)
            files.write_json(out / f"{name}.json", [rows[v][k] for k in keys])
            subsets[name] = {"rows": len(keys), "keys": keys}
            if v in lengths:
                subsets[name]["tokens"] = length_report([lengths[v][k] for k in keys], args.cutoff_len)
    half = subset_size(len(order), 0.5)
    subsets["rl_rest_50"] = {"rows": len(order) - half, "keys": order[half:]}

    info_path = out / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    merged = info | dataset_info_entries(fractions, variants)
    if merged != info:
        files.write_json(info_path, merged)
    return subsets


if __name__ == "__main__":
    sys.exit(main())
