"""Throughput of data_process/distill_data.py against the local stand-in teacher (tool_n1.openai_stub).

The stand-in answers every request after a fixed latency (default 200 ms); the real CLI runs as a subprocess on
N synthetic samples at concurrency C. Ideal wall time = N / C × latency; the target is ≤ 2× ideal. Loopback only.

    .venv/rl/bin/python bench/bench_distill.py            # 1,000 samples, concurrency 32, 200 ms
    .venv/rl/bin/python bench/bench_distill.py --samples 200 --concurrency 8 --latency 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tool_n1.openai_stub import Action, OpenAIStub

REPO = Path(__file__).resolve().parent.parent

TOOLS = [
    {"name": "get_weather", "description": "Weather of a city.", "parameters": {"type": "object", "properties": {}}}
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--samples", type=int, default=1000, help="number of samples")
    parser.add_argument("--concurrency", type=int, default=32, help="--concurrency of the CLI")
    parser.add_argument("--latency", type=float, default=0.2, help="stand-in latency per request, seconds")
    args = parser.parse_args(argv)

    answer = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    reply = Action.ok(f"<tool_call>{json.dumps(answer)}</tool_call>", reasoning="Weather in Paris: get_weather.")
    with tempfile.TemporaryDirectory() as tmp, OpenAIStub(default=reply, latency=args.latency) as stub:
        inp, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        with open(inp, "w", encoding="utf-8") as handle:
            for i in range(args.samples):
                conversations = [{"from": "human", "value": f"What is the weather in Paris? ({i})"}]
                rec = {"id": "toolace_single_turn", "tools": TOOLS, "conversations": conversations, "answer": answer}
                handle.write(json.dumps(rec) + "\n")
        script = REPO / "data_process" / "distill_data.py"
        cmd = [sys.executable, str(script), "--input", str(inp), "--output", str(out), "--base-url", stub.base_url]
        cmd += ["--model", "stub-r1", "--api-key-env", "BENCH_KEY", "--concurrency", str(args.concurrency)]
        cmd += ["--timeout", "30", "--no-progress"]
        start = time.monotonic()
        proc = subprocess.run(cmd, env=dict(os.environ, BENCH_KEY="sk-bench"), capture_output=True, text=True)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        summary = json.loads(proc.stdout)
        peak = stub.state.max_in_flight
    ideal = args.samples / args.concurrency * args.latency
    loop = summary["this_run"]["wall_s"]
    rows = [
        ("samples / concurrency / latency", f"{args.samples} / {args.concurrency} / {args.latency * 1000:.0f} ms"),
        ("kept / failed", f"{summary['total']['kept']} / {summary['total']['failed']}"),
        ("server peak in-flight", str(peak)),
        ("ideal (N/C x latency)", f"{ideal:.2f} s"),
        ("wall, whole CLI (start-up incl.)", f"{wall:.2f} s  ({wall / ideal:.2f}x ideal)"),
        ("wall, distillation loop", f"{loop:.2f} s  ({loop / ideal:.2f}x ideal)"),
        ("target", "<= 2.00x ideal: " + ("PASS" if wall <= 2 * ideal else "FAIL")),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"| {'metric':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    return 0 if wall <= 2 * ideal else 1


if __name__ == "__main__":
    sys.exit(main())
