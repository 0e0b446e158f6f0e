"""BFCL ``evaluate`` + ``report`` wall time over all 13 single-turn categories, next to bfcl-eval's own evaluate.

    .venv/eval/bin/python eval/bench_bfcl.py [--repeats 3] [--keep DIR]

Writes synthetic result files (the Tool-N1-7B per-category counts of Table 2, replies rendered from the possible
answers) once, then alternates, in one process (``bfcl_eval`` imported once, outside the timings):

* ``bfcl evaluate``: bfcl-eval's own CLI ``evaluate`` on those files (our handler registered, decoding included);
* ``run_bfcl evaluate+report``: our subcommand (registration, the same bfcl evaluate, then the report).

Target: our overhead < 10 % of bfcl-eval's own evaluate. Prints a Markdown table and the report.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3; median reported)")
    parser.add_argument("--keep", help="folder to keep the files in (default: a temporary folder)")
    args = parser.parse_args(argv)
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-bfcl-")).resolve()
    os.environ["BFCL_PROJECT_ROOT"] = str(root)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import bfcl_handler
    import bfcl_report
    import bfcl_synthetic
    import run_bfcl

    key = "tool-n1/bench"
    bfcl_synthetic.write_single_turn(root / "result", key, bfcl_synthetic.TABLE2_COUNTS["Tool-N1-7B"])
    run_bfcl.register(key, key, bfcl_handler.HandlerOptions())
    common = ["--model", key, "--test-category", run_bfcl.SINGLE_TURN, "--result-dir", str(root / "result")]
    times: dict[str, list[float]] = {"bfcl evaluate": [], "run_bfcl evaluate+report": []}
    report = None
    for i in range(args.repeats):
        for name in times:
            score = ["--score-dir", str(root / f"score-{name.split()[0]}-{i}")]
            sink = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                if name == "bfcl evaluate":
                    run_bfcl.bfcl_cli(["evaluate", *common, *score])
                else:
                    report = run_bfcl.main(["evaluate", "--project-root", str(root), *common, *score])
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["bfcl evaluate"])
    print(f"| step ({args.repeats} runs, median) | wall s | vs bfcl evaluate |\n|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {100 * (median / base - 1):+.1f} % |")
    print()
    print(bfcl_report.render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
