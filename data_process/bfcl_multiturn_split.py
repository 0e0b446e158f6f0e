"""BFCL multi-turn entries → a seeded train / held-out split as verl parquet rows for the multi-turn agent loop.

    .venv/rl-vllm/bin/python data_process/bfcl_multiturn_split.py --output-dir data/verl_multiturn
    .venv/rl-vllm/bin/python data_process/bfcl_multiturn_split.py --output-dir data/verl_multiturn \\
        --categories multi_turn_base multi_turn_miss_param --seed 0 --train-fraction 0.5

Reads bfcl-eval's own data (``BFCL_v4_<category>.json`` and its possible answers; needs ``bfcl-eval`` installed).
The scenarios (BFCL's categories are variants of the same 200: ``multi_turn_miss_func_7`` is ``multi_turn_base_7``
with a function held out) are shuffled with ``random.Random(seed)`` (ids sorted first, so the split depends only on
the seed and the id set) and the first ``round(train_fraction · n)`` go to training, the rest are held out; every
category's variant of a scenario lands in the same half, so no held-out entry's scenario is trained on under another
category. Categories: ``multi_turn_base`` (default), ``multi_turn_miss_param``, ``multi_turn_long_context``,
``multi_turn_miss_func`` (the held-out functions are missing from the system prompt until their turn, whose user
message lists them, as bfcl-eval's prompting inference does). Writes (refusing to overwrite unless ``--overwrite``):

* ``train.parquet`` / ``test.parquet`` — one row per entry: ``prompt`` = the Tool-N1 system prompt listing the
  functions of the entry's classes, exactly as ``eval/run_bfcl.py --prompt train`` sends it (``--data-mode``) + the
  first user turn; ``agent_name`` = ``bfcl_tool_agent``;
  ``reward_model.ground_truth`` = the per-turn calls ``[[{"name", "arguments"}, ...], ...]`` (BFCL's positional
  arguments named from the method signature); ``extra_info.bfcl`` = JSON of the environment spec (initial config,
  involved classes, later user turns, ground-truth call strings) that the agent loop builds the environment from;
* ``split.json`` — seed, categories, and the ids of each half (evaluate only on ``heldout_ids``);
* ``heldout_ids.txt`` — the held-out ids as one comma list, for ``eval/run_bfcl.py generate --ids "$(cat …)"``.

Rows that cannot be converted (an unknown class, a ground-truth call that does not parse) are skipped and counted
with the reason; the summary is printed and stored in ``split.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tool_n1.prompts import DEFAULT_PREAMBLE, training_system_prompt
from tool_n1.schema import normalize_tool

log = logging.getLogger("bfcl_multiturn_split")
DATA_SOURCE = "bfcl_multi_turn"
AGENT_NAME = "bfcl_tool_agent"
DATA_MODES = ("improved", "faithful")
CATEGORIES = ("multi_turn_base", "multi_turn_miss_param", "multi_turn_long_context", "multi_turn_miss_func")


def bfcl_data_dir() -> Path:
    import bfcl_eval

    return Path(bfcl_eval.__file__).parent / "data"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def seeded_split(ids: list[str], seed: int, train_fraction: float) -> tuple[list[str], list[str]]:
    """(train ids, held-out ids): sorted ids shuffled by ``random.Random(seed)``, the first part for training."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    cut = round(train_fraction * len(order))
    return sorted(order[:cut]), sorted(order[cut:])


def scenario_key(entry_id: str) -> str:
    """``multi_turn_<category>_<N>`` → ``multi_turn_base_<N>``: BFCL's categories are variants of the same scenarios
    (``miss_param_7`` is ``base_7`` with a parameter left out), so every variant of scenario N goes to one half."""
    return "multi_turn_base_" + entry_id.rsplit("_", 1)[-1]


def scenario_split(
    ids: list[str], seed: int, train_fraction: float, scenarios: list[str] | None = None
) -> tuple[list[str], list[str]]:
    """:func:`seeded_split` of ``scenarios`` (default: those of ``ids``; identical to :func:`seeded_split` on
    ``multi_turn_base``), mapped back to ``ids``. Pass every category's scenarios so each split the same way."""
    keys = {entry_id: scenario_key(entry_id) for entry_id in ids}
    universe = set(keys.values()) | {scenario_key(s) for s in scenarios or ()}
    train_keys, _ = seeded_split(sorted(universe), seed, train_fraction)
    train_set = set(train_keys)
    return sorted(i for i in ids if keys[i] in train_set), sorted(i for i in ids if keys[i] not in train_set)


def holdout_turns(entry: dict[str, Any], classes: list[str]) -> tuple[list[list[dict]], set[str]]:
    """The entry's user turns with BFCL's ``miss_func`` hold-out turns filled in, and the held-out function names.

    As bfcl-eval's prompting inference: a held-out function is missing from the listed functions until its turn,
    whose (empty) user message becomes ``DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING`` with the function
    documents.
    """
    from bfcl_eval.constants.default_prompts import DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING as PROMPT

    from tool_n1_multiturn.environment import function_docs

    turns = [list(turn) for turn in entry["question"]]
    missed = entry.get("missed_function") or {}
    hidden: set[str] = set()
    for index, names in missed.items():
        index = int(index)
        if not 0 <= index < len(turns) or turns[index]:
            raise ValueError(f"hold-out turn {index} is not an empty user turn")
        docs = []
        for name in names:
            doc = next((d for c in classes for d in function_docs(c) if d["name"] == name), None)
            if doc is None:
                raise ValueError(f"held-out function {name!r} is not in the entry's classes")
            docs.append(doc)
            hidden.add(name)
        turns[index] = [{"role": "user", "content": PROMPT.format(functions=docs)}]
    return turns, hidden


def system_prompt(docs: list[dict[str, Any]], data_mode: str = "improved") -> str:
    """The system message ``eval/run_bfcl.py --prompt train --data-mode <data_mode>`` sends for these BFCL function
    documents (so a row's prompt is what the evaluation of the same entry shows the model)."""
    if data_mode == "improved":
        return training_system_prompt([normalize_tool(doc) for doc in docs], DEFAULT_PREAMBLE, dedupe=True)
    return training_system_prompt(docs, DEFAULT_PREAMBLE)


def entry_row(
    entry: dict[str, Any],
    answer: list[list[str]],
    category: str,
    split: str,
    index: int,
    tool_list: str = "classes",
    data_mode: str = "improved",
) -> dict:
    """One verl row; raises ``ValueError`` (with the reason) for an entry that cannot be converted."""
    from tool_n1_multiturn.environment import class_methods, function_docs, parse_call_string

    classes = list(entry["involved_classes"])
    turns, hidden = holdout_turns(entry, classes)
    if len(turns) != len(answer):
        raise ValueError(f"{len(turns)} user turns but {len(answer)} ground-truth turns")
    truth = []
    for turn in answer:
        calls = []
        for text in turn:
            name, arguments = parse_call_string(text, classes)
            calls.append({"name": name, "arguments": arguments})
        truth.append(calls)
    used = {call["name"] for turn in truth for call in turn}
    docs = [
        doc
        for name in classes
        for doc in function_docs(name)
        if doc["name"] in class_methods(name)
        and doc["name"] not in hidden
        and (tool_list == "classes" or doc["name"] in used)
    ]
    spec = {
        "id": entry["id"],
        "initial_config": entry.get("initial_config", {}),
        "involved_classes": classes,
        "next_turns": turns[1:],
        "ground_truth": answer,
        "long_context": category == "multi_turn_long_context",
    }
    system = {"role": "system", "content": system_prompt(docs, data_mode)}
    return {
        "data_source": DATA_SOURCE,
        "agent_name": AGENT_NAME,
        "prompt": [system, *turns[0]],
        "ability": "tool_use",
        "reward_model": {"style": "rule", "ground_truth": json.dumps(truth)},
        "extra_info": {"index": index, "split": split, "id": entry["id"], "bfcl": json.dumps(spec)},
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for train/test parquet + split.json")
    parser.add_argument(
        "--categories",
        nargs="+",
        default=["multi_turn_base"],
        choices=CATEGORIES,
        help="BFCL multi-turn categories to split; every category's variant of a scenario goes to the same half "
        "(miss_func: held-out functions listed only from their turn on, as bfcl-eval does) [multi_turn_base]",
    )
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed of the split [0]")
    parser.add_argument("--train-fraction", type=float, default=0.5, help="share of each category for training [0.5]")
    parser.add_argument("--limit", type=int, default=None, help="keep only the first N rows of each half (smoke runs)")
    parser.add_argument(
        "--tool-list",
        choices=("classes", "ground_truth"),
        default="classes",
        help="functions listed in the system prompt: all of the entry's classes (as BFCL) or only those its ground "
        "truth calls (short prompts for CPU smoke runs; the environment still offers every class function) [classes]",
    )
    parser.add_argument(
        "--data-mode",
        choices=DATA_MODES,
        default="improved",
        help="system prompt as eval/run_bfcl.py --prompt train --data-mode builds it (improved: tool specs "
        "normalised, the repeated sentence dropped; faithful: BFCL's documents as they are) [improved]",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not 0.0 < args.train_fraction < 1.0:
        log.error("--train-fraction must be between 0 and 1")
        return 2
    out = args.output_dir
    targets = [out / "train.parquet", out / "test.parquet", out / "split.json", out / "heldout_ids.txt"]
    if not args.overwrite and any(p.exists() for p in targets):
        log.error("%s already holds a split; pass --overwrite to replace it", out)
        return 2
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = bfcl_data_dir()
    rows: dict[str, list[dict]] = {"train": [], "test": []}
    ids: dict[str, list[str]] = {"train": [], "heldout": []}
    skipped: Counter[str] = Counter()
    # one split of the scenarios of multi_turn_base and every requested category, so all variants agree
    scenarios = [
        e["id"] for c in {"multi_turn_base", *args.categories} for e in read_jsonl(data / f"BFCL_v4_{c}.json")
    ]
    for category in args.categories:
        entries = {e["id"]: e for e in read_jsonl(data / f"BFCL_v4_{category}.json")}
        answers = {
            a["id"]: a["ground_truth"] for a in read_jsonl(data / "possible_answer" / f"BFCL_v4_{category}.json")
        }
        train, heldout = scenario_split(list(entries), args.seed, args.train_fraction, scenarios)
        for split, chosen in (("train", train), ("test", heldout)):
            for entry_id in chosen:
                try:
                    row = entry_row(
                        entries[entry_id],
                        answers[entry_id],
                        category,
                        split,
                        len(rows[split]),
                        args.tool_list,
                        args.data_mode,
                    )
                except (KeyError, ValueError, SyntaxError) as exc:
                    skipped[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                    log.warning("skipped %s: %s", entry_id, exc)
                    continue
                rows[split].append(row)
                ids["train" if split == "train" else "heldout"].append(entry_id)
    if args.limit is not None:  # the ids stay in step with the rows
        rows = {split: r[: args.limit] for split, r in rows.items()}
        ids = {half: i[: args.limit] for half, i in ids.items()}
    out.mkdir(parents=True, exist_ok=True)
    for split, path in (("train", targets[0]), ("test", targets[1])):
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(pa.Table.from_pylist(rows[split]), tmp)
        tmp.replace(path)
    summary = {
        "seed": args.seed,
        "train_fraction": args.train_fraction,
        "categories": args.categories,
        "tool_list": args.tool_list,
        "data_mode": args.data_mode,
        "train_ids": ids["train"],
        "heldout_ids": ids["heldout"],
        "rows": {split: len(r) for split, r in rows.items()},
        "skipped": dict(skipped),
    }
    targets[2].write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    targets[3].write_text(",".join(ids["heldout"]) + "\n", encoding="utf-8")
    log.info(
        "train %d rows, held-out %d rows, skipped %d -> %s",
        len(rows["train"]),
        len(rows["test"]),
        sum(skipped.values()),
        out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
