"""Benchmark of the data pipeline at paper scale on synthetic raw data, side by side with the original (not a test).

Command line (from the repository root; needs pyarrow, datasets and tqdm, e.g. the rl environment):

    python bench/bench_data.py [--toolace 11300] [--xlam 60000] [--tool-pool 3600] [--mode improved] \
        [--original DIR] [--engine local|datasets] [--workers N] [--keep DIR [--reuse]]

Generates hub-format ToolACE dialogs (1-4 call turns each, 3-6 tools; every 14th dialog multi-turn) and xLAM rows
(5-7 tools drawn from a pool of ``--tool-pool`` tools; the real set has about 3,600 APIs; 0: every tool distinct)
as JSON lists in a temporary folder, then runs the two commands a user runs, each as its own process (start-up
included): ``data_process.py`` (raw -> unified) and ``verl/examples/data_preprocess/toolcall_preprocess.py``
(unified -> parquet). With ``--original DIR`` (a checkout of the original Tool-N1 code at commit f9b4849) it first
runs the original's two scripts on the same input, unchanged, each as its own process: ``raw_data_process.py``'s
``main()`` (its placeholder paths point at the input, renamed to the ``human/gpt/observation`` roles it expects, and
its ``load_dataset`` of the xLAM hub name reads the local file instead) and ``verl_toolcall_preprocess.py`` (its
placeholder input path points at the first script's output). Prints per stage the wall time, rows/s, CPU seconds
and peak RSS (the stage's own ``ru_maxrss`` from ``wait4``, or the sampled sum over its process tree when larger),
the speed-up and memory against the original, and the load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_SECONDS = 0.1  # process-tree RSS sampling period (each sample walks /proc: keep it light)
PREAMBLE = (
    "You are an expert in composing functions. You are given a question and a set of possible functions. \n"
    "Based on the question, you will need to make one or more function/tool calls to achieve the purpose. \n"
    "If none of the function can be used, point it out. If the given question lacks the parameters required by "
    "the function,\nalso point it out. You should only return the function call in tools call sections.\n"
    "Here is a list of functions in JSON format that you can invoke:\n"
)
SUFFIX = (
    ". \nShould you decide to return the function call(s). \nPut it in the format of [func1(params_name=params_value, "
    "params_name2=params_value2...), func2(params)]\n\nNO other text MUST be included. \n"
)
WORDS = "market trend weather stock news sport image flight hotel price search translate fetch list get".split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def toolace_dialog(rng: random.Random, index: int) -> dict:
    tools = []
    for t in range(rng.randint(3, 6)):
        name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} API {index}_{t}"
        props = {f"p{k}": {"description": _text(rng, 8), "type": "string"} for k in range(rng.randint(1, 4))}
        tools.append(
            {
                "name": name,
                "description": _text(rng, 20),
                "parameters": {"type": "dict", "properties": props, "required": ["p0"]},
                "required": None,
            }
        )
    turns, multi = [], index % 14 == 0  # about 800 multi-turn dialogs in 11,300, as in the paper's Table 1
    calls = rng.randint(1, 4)
    for call in range(calls):
        tool = rng.choice(tools)
        args = ", ".join(f'{p}="{_text(rng, 2)}"' for p in tool["parameters"]["properties"])
        if call == 0 or multi:
            turns.append({"from": "user", "value": _text(rng, 25)})
        turns += [
            {"from": "assistant", "value": f"[{tool['name']}({args})]"},
            {"from": "tool", "value": json.dumps([{"name": tool["name"], "results": {"r": _text(rng, 30)}}])},
        ]
        if call == calls - 1 or multi:
            turns.append({"from": "assistant", "value": _text(rng, 40)})
    return {"system": PREAMBLE + json.dumps(tools) + SUFFIX, "conversations": turns}


def xlam_tool(rng: random.Random, t: int) -> dict:
    """One synthetic xLAM tool (flat parameter map, Python-ish types, empty defaults, as in the real rows)."""
    params = {
        f"arg{k}": {
            "description": _text(rng, 10),
            "type": rng.choice(["str", "int", "float, optional"]),
            "default": "",
        }
        for k in range(rng.randint(1, 3))
    }
    return {
        "name": f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{t}",
        "description": _text(rng, 18),
        "parameters": params,
    }


def _value(rng: random.Random, tool: dict):
    kind = tool["parameters"]["arg0"]["type"]
    return _text(rng, 2) if kind == "str" else rng.randint(1, 99) if kind == "int" else round(rng.random() * 9, 2)


def xlam_row(rng: random.Random, index: int, pool: list[dict]) -> dict:
    """One xLAM row with 5-7 tools drawn from ``pool``, or all new tools when the pool is empty."""
    count = rng.randint(5, 7)
    tools = rng.sample(pool, count) if pool else [xlam_tool(rng, index * 8 + k) for k in range(count)]
    answers = [{"name": tool["name"], "arguments": {"arg0": _value(rng, tool)}} for tool in rng.sample(tools, 2)]
    return {"id": index, "query": _text(rng, 30), "answers": json.dumps(answers), "tools": json.dumps(tools)}


def write_json_list(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[")
        for i, row in enumerate(rows):
            handle.write(("," if i else "") + json.dumps(row, ensure_ascii=False))
        handle.write("]")


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (MB), 0 if it is gone."""
    try:
        import psutil

        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
    except Exception:  # no psutil, or the process ended
        return 0.0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except Exception:  # ended meanwhile
            pass
    return total / 2**20


def run_stage(name: str, command: list[str], cwd: Path) -> dict:
    """Run one stage as its own process, as a user would (interpreter start-up and imports included).

    Peak RSS: the larger of the process's own ``ru_maxrss`` (``wait4``; includes its reaped children) and the
    sampled sum over the process tree (workers running at the same time add up)."""
    started = time.perf_counter()
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}  # no network waits in the timings
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampled = [0.0]
    done = threading.Event()

    def sample():
        while not done.wait(SAMPLE_SECONDS):
            sampled[0] = max(sampled[0], _tree_rss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    collected: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda key, stream: collected.__setitem__(key, stream.read()), args=(k, s))
        for k, s in (("stdout", process.stdout), ("stderr", process.stderr))
    ]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{name} failed ({process.returncode}):\n{collected['stderr'].decode()[-3000:]}")
    peak_mb = max(usage.ru_maxrss / 1024, sampled[0])
    return {"stage": name, "seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss_mb": peak_mb}


ORIGINAL_STAGE_1 = """
import datasets, json, os, sys
original, toolace, xlam = sys.argv[1:4]
sys.path[:0] = [os.path.join(original, "data_process"), os.path.join(original, "verl", "verl")]
import raw_data_process  # the original module, unchanged
os.makedirs("path/to/your/data", exist_ok=True)
for name, target in (("toolace_single_turn.json", toolace), ("toolace_multi_turn.json", None)):
    if target is None:
        open("path/to/your/data/" + name, "w").write("[]")
    elif not os.path.exists("path/to/your/data/" + name):
        os.symlink(target, "path/to/your/data/" + name)
def local_xlam(name, split, cache_dir):  # the hub name, read from the local copy
    return datasets.load_dataset("json", data_files=xlam, split=split, cache_dir=cache_dir)
raw_data_process.load_dataset = local_xlam
sys.argv = ["raw_data_process.py", "--output_dir", "."]
raw_data_process.main()
"""
ORIGINAL_STAGE_2 = """
import os, runpy, sys
script, output = sys.argv[1:3]
os.makedirs("path/to", exist_ok=True)
if not os.path.exists("path/to/original_data.json"):
    os.symlink(os.path.abspath("raw_data.json"), "path/to/original_data.json")
os.makedirs(output, exist_ok=True)
sys.argv = [script, "--local_dir", output]
runpy.run_path(script, run_name="__main__")  # the original script, unchanged
"""
ROLES = {"user": "human", "assistant": "gpt", "tool": "observation"}


def run_original(original: Path, work: Path) -> list[dict]:
    """The original's two stages on the same input (ToolACE roles renamed to the ones it expects, not timed)."""
    renamed = work / "toolace_original_roles.json"
    if not renamed.is_file():
        dialogs = json.loads((work / "toolace.json").read_text())
        for dialog in dialogs:
            for turn in dialog["conversations"]:
                turn["from"] = ROLES.get(turn["from"], turn["from"])
        write_json_list(renamed, dialogs)
    folder = work / "original"
    folder.mkdir(exist_ok=True)
    python = sys.executable
    stage1 = run_stage(
        "original raw -> json",
        [python, "-c", ORIGINAL_STAGE_1, str(original), str(renamed), str(work / "xlam.json")],
        folder,
    )
    script = original / "verl" / "examples" / "data_preprocess" / "verl_toolcall_preprocess.py"
    stage2 = run_stage("original json -> parquet", [python, "-c", ORIGINAL_STAGE_2, str(script), "verl"], folder)
    return [stage1, stage2]


def run_ours(work: Path, args: argparse.Namespace) -> list[dict]:
    python = sys.executable
    common = ["--mode", args.mode, "--log-level", "WARNING", "--engine", args.engine]
    common += [] if args.workers is None else ["--workers", str(args.workers)]
    common += ["--no-progress"] if args.no_progress else []  # default: with the progress bars a user sees
    inputs = ["--toolace", str(work / "toolace.json"), "--xlam", str(work / "xlam.json")]
    stage1 = run_stage(
        "raw -> unified",
        [python, "data_process.py", *inputs, "--output-dir", str(work / "unified"), *common],
        REPO / "data_process",
    )
    unified = ["--input", str(work / "unified" / "unified.jsonl"), "--local_dir", str(work / "verl")]
    stage2 = run_stage(
        "unified -> parquet",
        [python, "toolcall_preprocess.py", *unified, *common],
        REPO / "verl" / "examples" / "data_preprocess",
    )
    return [stage1, stage2]


def print_table(title: str, stages: list[dict], rows_in: int, samples: int) -> dict:
    print(title)
    print(f"  {'stage':<26}{'wall s':>8}{'rows/s':>10}{'CPU s':>8}{'peak RSS MB':>13}")
    for stage, rows in zip(stages, (rows_in, samples), strict=True):
        print(
            f"  {stage['stage']:<26}{stage['seconds']:>8.2f}{rows / stage['seconds']:>10.0f}{stage['cpu']:>8.2f}"
            f"{stage['peak_rss_mb']:>13.0f}"
        )
    total = {
        "seconds": sum(stage["seconds"] for stage in stages),
        "cpu": sum(stage["cpu"] for stage in stages),
        "peak_rss_mb": max(stage["peak_rss_mb"] for stage in stages),
    }
    print(
        f"  {'total (both stages)':<26}{total['seconds']:>8.2f}{rows_in / total['seconds']:>10.0f}"
        f"{total['cpu']:>8.2f}{total['peak_rss_mb']:>13.0f}"
    )
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the data pipeline on synthetic paper-scale raw data, optionally against the original.",
        allow_abbrev=False,
    )
    parser.add_argument("--toolace", type=int, default=11300, help="number of synthetic ToolACE dialogs")
    parser.add_argument("--xlam", type=int, default=60000, help="number of synthetic xLAM rows")
    parser.add_argument(
        "--tool-pool",
        type=int,
        default=3600,
        help="xLAM rows draw their tools from this many (the real set: about 3,600); 0: every tool distinct",
    )
    parser.add_argument("--mode", choices=("faithful", "improved"), default="improved", help="pipeline mode")
    parser.add_argument("--engine", choices=("local", "datasets"), default="local", help="--engine of both stages")
    parser.add_argument("--workers", type=int, default=None, help="--workers of both stages (with --engine datasets)")
    parser.add_argument("--original", default=None, help="a checkout of the original Tool-N1 code (commit f9b4849)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--keep", default=None, help="write data here instead of a temporary folder")
    parser.add_argument("--reuse", action="store_true", help="with --keep: reuse the raw files already there")
    parser.add_argument("--no-progress", action="store_true", help="run our stages without progress bars")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.keep or temporary)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if not (args.reuse and (work / "toolace.json").is_file() and (work / "xlam.json").is_file()):
            write_json_list(work / "toolace.json", (toolace_dialog(rng, i) for i in range(args.toolace)))
            pool = [xlam_tool(rng, t) for t in range(args.tool_pool)]
            write_json_list(work / "xlam.json", (xlam_row(rng, i, pool) for i in range(args.xlam)))
            (work / "toolace_original_roles.json").unlink(missing_ok=True)
        generate = time.perf_counter() - started
        load_before = os.getloadavg()
        original = run_original(Path(args.original), work) if args.original else None
        ours = run_ours(work, args)
        report = json.loads((work / "unified" / "report.json").read_text())
        sizes = {p.name: p.stat().st_size / 1e6 for p in [work / "toolace.json", work / "xlam.json"]}
        original_samples = None
        if original:
            original_samples = sum(1 for _ in json.loads((work / "original" / "raw_data.json").read_text()))
    rows_in = args.toolace + args.xlam
    samples = report["samples_written"]
    pool = f"a pool of {args.tool_pool}" if args.tool_pool else "no repeats (every tool distinct)"
    print(
        f"synthetic input: {args.toolace} ToolACE dialogs ({sizes['toolace.json']:.0f} MB) + {args.xlam} xLAM rows "
        f"({sizes['xlam.json']:.0f} MB, tools from {pool}), generated in {generate:.1f} s"
    )
    if original:
        before = print_table(f"original (f9b4849): {original_samples} samples", original, rows_in, original_samples)
    engine = args.engine + (f", {args.workers} workers" if args.workers else "")
    after = print_table(f"this pipeline ({args.mode}, engine {engine}): {samples} samples", ours, rows_in, samples)
    if original:
        print(
            f"speed-up {before['seconds'] / after['seconds']:.2f}x, peak memory "
            f"{after['peak_rss_mb'] / before['peak_rss_mb']:.2f} of the original's"
        )
    load_after = os.getloadavg()
    print(
        f"({os.cpu_count()} CPUs; 1-min load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        "rows/s: raw rows for stage 1 and the total, samples for stage 2; CPU s: user + system of the stage)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
