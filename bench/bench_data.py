"""Benchmark of the data pipeline at paper scale on synthetic raw data (not a test).

Command line (from the repository root; needs pyarrow and tqdm, e.g. the rl environment):

    python bench/bench_data.py [--toolace 11300] [--xlam 60000] [--mode improved] [--keep DIR]

Generates hub-format ToolACE dialogs (1-4 call turns each, 3-6 tools; every 14th dialog multi-turn) and xLAM rows
(5-7 tools drawn from a pool of 3,600 like the real set) as JSON lists in a
temporary folder, then runs the two commands a user runs, each as its own process (start-up included):
``data_process.py`` (raw -> unified) and ``verl/examples/data_preprocess/toolcall_preprocess.py`` (unified ->
parquet), with their progress bars (``--no-progress`` to drop them). Prints per stage the wall time, rows/s, CPU
seconds and peak RSS (the stage's own ``ru_maxrss`` from ``wait4``, or the sampled sum over its process tree when
larger), and the load average, since the machine may be shared.
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


def xlam_tool_pool(rng: random.Random, size: int = 3600) -> list[dict]:
    """Real xLAM draws its tools from about 3,600 APIs; the synthetic rows do the same."""
    pool = []
    for t in range(size):
        params = {
            f"arg{k}": {
                "description": _text(rng, 10),
                "type": rng.choice(["str", "int", "float, optional"]),
                "default": "",
            }
            for k in range(rng.randint(1, 3))
        }
        pool.append(
            {
                "name": f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_{t}",
                "description": _text(rng, 18),
                "parameters": params,
            }
        )
    return pool


def xlam_row(rng: random.Random, index: int, pool: list[dict]) -> dict:
    tools = rng.sample(pool, rng.randint(5, 7))
    answers = [{"name": tool["name"], "arguments": {"arg0": _text(rng, 2)}} for tool in rng.sample(tools, 2)]
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
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time the data pipeline on synthetic paper-scale raw data.", allow_abbrev=False
    )
    parser.add_argument("--toolace", type=int, default=11300, help="number of synthetic ToolACE dialogs")
    parser.add_argument("--xlam", type=int, default=60000, help="number of synthetic xLAM rows")
    parser.add_argument("--mode", choices=("faithful", "improved"), default="improved", help="pipeline mode")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--keep", default=None, help="write data here instead of a temporary folder")
    parser.add_argument("--reuse", action="store_true", help="with --keep: reuse the raw files already there")
    parser.add_argument(
        "--workers", type=int, default=None, help="pass --workers N to both stages (default: their own, 2 on 2 CPUs)"
    )
    parser.add_argument("--no-progress", action="store_true", help="run the stages without progress bars")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.keep or temporary)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        if not (args.reuse and (work / "toolace.json").is_file() and (work / "xlam.json").is_file()):
            write_json_list(work / "toolace.json", (toolace_dialog(rng, i) for i in range(args.toolace)))
            pool = xlam_tool_pool(rng)
            write_json_list(work / "xlam.json", (xlam_row(rng, i, pool) for i in range(args.xlam)))
        generate = time.perf_counter() - started
        python = sys.executable
        quiet = ["--no-progress"] if args.no_progress else []  # default: with the progress bars a user sees
        load_before = os.getloadavg()
        stage1 = run_stage(
            "raw -> unified",
            [
                python,
                "data_process.py",
                "--toolace",
                str(work / "toolace.json"),
                "--xlam",
                str(work / "xlam.json"),
                "--output-dir",
                str(work / "unified"),
                "--mode",
                args.mode,
                "--log-level",
                "WARNING",
                *quiet,
                *([] if args.workers is None else ["--workers", str(args.workers)]),
            ],
            REPO / "data_process",
        )
        stage2 = run_stage(
            "unified -> parquet",
            [
                python,
                "toolcall_preprocess.py",
                "--input",
                str(work / "unified" / "unified.jsonl"),
                "--local_dir",
                str(work / "verl"),
                "--mode",
                args.mode,
                "--log-level",
                "WARNING",
                *quiet,
                *([] if args.workers is None else ["--workers", str(args.workers)]),
            ],
            REPO / "verl" / "examples" / "data_preprocess",
        )
        report = json.loads((work / "unified" / "report.json").read_text())
        sizes = {p.name: p.stat().st_size / 1e6 for p in [work / "toolace.json", work / "xlam.json"]}
    rows_in = args.toolace + args.xlam
    samples = report["samples_written"]
    stage1["rows_per_s"] = rows_in / stage1["seconds"]
    stage2["rows_per_s"] = samples / stage2["seconds"]
    print(
        f"synthetic input: {args.toolace} ToolACE dialogs ({sizes['toolace.json']:.0f} MB) + {args.xlam} xLAM rows "
        f"({sizes['xlam.json']:.0f} MB), generated in {generate:.1f} s; mode {args.mode}; {samples} samples"
    )
    print(f"{'stage':<22}{'wall s':>8}{'rows/s':>10}{'CPU s':>8}{'peak RSS MB':>13}")
    for stage in (stage1, stage2):
        print(
            f"{stage['stage']:<22}{stage['seconds']:>8.2f}{stage['rows_per_s']:>10.0f}{stage['cpu']:>8.2f}"
            f"{stage['peak_rss_mb']:>13.0f}"
        )
    total = stage1["seconds"] + stage2["seconds"]
    peak = max(stage1["peak_rss_mb"], stage2["peak_rss_mb"])
    cpu = stage1["cpu"] + stage2["cpu"]
    print(f"{'total (both stages)':<22}{total:>8.2f}{rows_in / total:>10.0f}{cpu:>8.2f}{peak:>13.0f}")
    load_after = os.getloadavg()
    print(
        f"({os.cpu_count()} CPUs; 1-min load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        "rows/s: raw rows for stage 1 and the total, samples for stage 2; CPU s: user + system of the stage)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
