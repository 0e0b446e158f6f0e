"""Nothing a model writes is executed by BFCL's multi-turn executor (``eval`` inside bfcl-eval).

A corpus of hostile replies and hostile raw call strings goes through bfcl-eval's own executor
(``execute_multi_turn_func_call``, behind :mod:`bfcl_executor_guard`), for several entries with different API
classes in one process (so earlier entries' instances sit in the executor's globals), inside a sandbox folder with a
sentinel file. Afterwards: the sentinel is unchanged, no marker file exists, no environment variable was set, and
nothing changed in a folder outside the sandbox (a fake site-packages included) or in the real site-packages. A
control run shows the same kind of string does execute through the unguarded executor, so the test can fail.
"""

from __future__ import annotations

import json
import os
import site
import sysconfig
from pathlib import Path

import pytest

from tests.bfcl_support import bfcl_root

pytestmark = pytest.mark.eval_env

MODEL = "tool-n1_safety"


def _tc(calls) -> str:
    return f"<think>t</think><tool_call>{json.dumps(calls)}</tool_call>"


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder below ``folder``: relative path → (size, mtime_ns)."""
    found = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in dirs + files:
            path = Path(root, name)
            stat = path.lstat()
            found[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return found


def _site_packages() -> list[Path]:
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    return sorted(Path(p) for p in paths if Path(p).is_dir())


def _site_snapshot() -> dict[str, tuple[int, int]]:
    """Top-level entries of every site-packages folder (where a ``.pth`` file would run at start-up)."""
    snap = {}
    for folder in _site_packages():
        for entry in folder.iterdir():
            stat = entry.lstat()
            snap[str(entry)] = (stat.st_size, stat.st_mtime_ns)
    return snap


def _hostile_strings(instance: str, sandbox: Path, outside: Path) -> list[str]:
    """Raw call strings a broken decoder could hand over (each would act if executed)."""
    marker = sandbox / "marker_raw"
    code = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')"
    return [
        f"{instance}.latest_snapshot_file.write_text(data={code!r})",
        f"{instance}.latest_snapshot_file.rename(target={str(outside / 'site-packages' / 'x.pth')!r})",
        f"{instance}.snapshot_folder.joinpath('m').write_text(data='x')",
        f"{instance}._flush_memory_to_local_file()",
        f"{instance}.__dict__.update(latest_snapshot_file={str(outside / 'x.pth')!r})",
        "memory_append(text=open('/etc/hostname').read())",
        f"memory_append(text=__import__('os').system('touch {marker}'))",
        "_flush_memory_to_local_file()",
        f"{instance}.core_memory_add.__self__.__class__.__init__.__globals__['__builtins__']['exec']({code!r})",
        "core_memory_add.__globals__['os'].environ.update(TOOL_N1_PWNED='1')",
        f"open({str(marker)!r}, 'w').write('x')",
        f"eval({code!r})",
        f"exec({code!r})",
        f"__import__('os').system('touch {marker}')",
        f"__import__('pathlib').Path({str(marker)!r}).write_text('x')",
        "().__class__.__base__.__subclasses__()",
        f"add(a=__import__('os').system('touch {marker}'), b=1)",
        f"add(a=1, **{{'b': open({str(marker)!r}, 'w')}})",
        f"add(a=(lambda: open({str(marker)!r}, 'w'))(), b=1)",
        f"add(a=1, b=2) or open({str(marker)!r}, 'w')",
        f"add(a=[open({str(marker)!r}, 'w') for _ in (1,)], b=1)",
        f"add(a=f'{{open({str(marker)!r}, \"w\")}}', b=1)",
        f"add(a=1, b=2); open({str(marker)!r}, 'w')",
        "globals()",
        "getattr(add, '__globals__')",
        "ls(a='.')",  # a method of a class this entry does not involve
        "_load_scenario(initial_config={}, long_context=False)",  # private method
        "importlib.import_module(name='antigravity')",
        "CLASS_FILE_PATH_MAPPING.clear()",
    ]


def _hostile_replies(instance: str, sandbox: Path, outside: Path) -> list[str]:
    """Model replies: each call must be refused by the decoder (or executed only as a harmless literal call)."""
    marker = sandbox / "marker_reply"
    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"
    calls = [
        {"name": f"{instance}.latest_snapshot_file.write_text", "arguments": {"data": code}},
        {"name": f"{instance}.latest_snapshot_file.rename", "arguments": {"target": str(outside / "x.pth")}},
        {"name": "core_memory_add.__self__.latest_snapshot_file.write_text", "arguments": {"data": "x"}},
        {"name": "core_memory_add.__class__", "arguments": {}},
        {"name": "__import__", "arguments": {"name": "os"}},
        {"name": "open", "arguments": {"file": str(marker), "mode": "w"}},
        {"name": "eval", "arguments": {"source": code}},
        {"name": "exec", "arguments": {"source": code}},
        {"name": "write_text", "arguments": {"data": code}},
        {"name": "rename", "arguments": {"target": str(outside / "x.pth")}},
        {"name": "ls", "arguments": {"a": "."}},
        {"name": f"add(a=1, b=2) or {code} or add", "arguments": {}},
        {"name": "add", "arguments": {f"a=1, b={code}, c": 1}},
        {"name": "add", "arguments": {"__class__": 1}},
        {"name": "add", "arguments": {"a": code, "b": f"'); {code}; ('"}},  # values carrying code stay strings
        {"name": "add", "arguments": {"a": "x" * 200_000, "b": 1}},
        {"name": "add", "arguments": {"a": json.loads("[" * 20 + "]" * 20), "b": 1}},
        {"name": "core_memory_add", "arguments": {"key": "k", "value": code}},
        {"name": "memory_append", "arguments": {"text": code}},  # values carrying code stay text in the memory
        {"name": "memory_update", "arguments": {"text": f"'); {code}; ('"}},
        {"name": "memory_retrieve.__self__.latest_snapshot_file.write_text", "arguments": {"data": code}},
        {"name": "memory_retrieve.__globals__", "arguments": {}},
        {"name": "_flush_memory_to_local_file", "arguments": {}},
        {"name": "_prepare_snapshot", "arguments": {"initial_config": {"model_result_dir": str(outside)}}},
    ]
    return [_tc([call]) for call in calls] + [_tc(calls), "<tool_call>" + "[" * 600 + "]" * 600 + "</tool_call>"]


def test_hostile_corpus_never_executes(tmp_path, monkeypatch):
    bfcl_root()
    import bfcl_executor_guard
    import bfcl_handler  # noqa: F401 - importing it installs the guard
    from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_checker
    from bfcl_eval.model_handler import base_handler

    from tool_n1 import bfcl_decode

    assert bfcl_executor_guard.installed()
    sandbox, outside = tmp_path / "sandbox", tmp_path / "outside"
    (outside / "site-packages").mkdir(parents=True)
    (outside / "site-packages" / "keep.txt").write_text("keep")
    sandbox.mkdir()
    sentinel = sandbox / "sentinel"
    sentinel.write_text("untouched")
    monkeypatch.chdir(sandbox)
    monkeypatch.delenv("TOOL_N1_PWNED", raising=False)
    outside_before, site_before = _tree(outside), _site_snapshot()

    memory_config = {"model_result_dir": sandbox, "test_id": "memory_kv_0-customer-0", "scenario": "customer"}
    rec_sum_id, kv_prereq_id = "memory_rec_sum_3-student-3", "memory_kv_prereq_1-customer-1"
    rec_sum_config = {"model_result_dir": sandbox, "test_id": rec_sum_id, "scenario": "student"}
    prereq_config = {"model_result_dir": sandbox, "test_id": kv_prereq_id, "scenario": "customer"}
    entries = [
        ("multi_turn_base_900", ["MemoryAPI_kv"], {"MemoryAPI_kv": memory_config}),
        (rec_sum_id, ["MemoryAPI_rec_sum"], {"MemoryAPI_rec_sum": rec_sum_config}),
        (kv_prereq_id, ["MemoryAPI_kv"], {"MemoryAPI_kv": prereq_config}),
        ("multi_turn_base_901", ["MathAPI"], {}),
        (
            "multi_turn_base_902",
            ["GorillaFileSystem", "MathAPI"],
            {"GorillaFileSystem": {"root": {"w": {"type": "directory", "contents": {}}}}},
        ),
        ("multi_turn_base_903", ["MathAPI", "TwitterAPI"], {}),
    ]
    model = MODEL.replace("-", "_")
    memory_instance = f"{model}_multi_turn_base_900_MemoryAPI_kv_instance"
    instances = [memory_instance, f"{model}_{rec_sum_id}_MemoryAPI_rec_sum_instance".replace("-", "_")]
    refused = executed = 0
    for test_id, classes, config in entries:
        handler_allowed = bfcl_executor_guard.allowed_methods(classes)
        strings = [text for name in instances for text in _hostile_strings(name, sandbox, outside)]
        for text in strings:
            executors = (base_handler.execute_multi_turn_func_call, multi_turn_checker.execute_multi_turn_func_call)
            for execute in executors:
                results, _ = execute([text], config, classes, model, test_id)
                if results[0].startswith(bfcl_executor_guard.REFUSED_PREFIX):
                    refused += 1
        replies = [reply for name in instances for reply in _hostile_replies(name, sandbox, outside)]
        for reply in replies:
            try:
                strings = bfcl_decode.decode_execute(reply, "last", handler_allowed)
            except bfcl_decode.DecodeError:
                refused += 1
                continue
            results, _ = base_handler.execute_multi_turn_func_call(strings, config, classes, model, test_id)
            executed += len(results)
        legit, _ = base_handler.execute_multi_turn_func_call(["add(a=1, b=2)"], config, classes, model, test_id)
        if "MathAPI" in classes:
            assert "3" in legit[0]  # allowed calls do run
        else:
            assert legit[0].startswith(bfcl_executor_guard.REFUSED_PREFIX)

    assert refused > 100 and executed > 0
    assert sentinel.read_text() == "untouched"
    assert not list(sandbox.glob("marker*")) and not (sandbox / "m").exists()
    assert "TOOL_N1_PWNED" not in os.environ
    assert _tree(outside) == outside_before
    assert _site_snapshot() == site_before


def test_control_unguarded_executor_runs_attribute_chains(tmp_path):
    """The corpus is dangerous: bfcl-eval's unguarded executor runs an instance attribute chain."""
    bfcl_root()
    import bfcl_executor_guard

    config = {"MemoryAPI_kv": {"model_result_dir": tmp_path, "test_id": "memory_kv_0-c-0", "scenario": "c"}}
    model, test_id = "tool_n1_control", "multi_turn_base_990"
    instance = f"{model}_{test_id}_MemoryAPI_kv_instance"
    text = f"{instance}.latest_snapshot_file.write_text(data='ran')"
    bfcl_executor_guard._original_execute([], config, ["MemoryAPI_kv"], model, test_id)
    bfcl_executor_guard._original_execute([text], config, ["MemoryAPI_kv"], model, test_id)
    written = list(tmp_path.rglob("c_final.json"))
    assert written and written[0].read_text() == "ran"


def test_every_multi_turn_ground_truth_passes_the_guard():
    """The guard refuses nothing that BFCL's own answers contain (multi-turn and memory categories)."""
    bfcl_root()
    import bfcl_executor_guard
    from bfcl_eval.utils import load_dataset_entry, load_ground_truth_entry

    from tool_n1 import bfcl_decode

    checked = 0
    for category in ("multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context"):
        entries = {e["id"]: e for e in load_dataset_entry(category, include_prereq=False)}
        for truth in load_ground_truth_entry(category):
            allowed = bfcl_executor_guard.allowed_methods(entries[truth["id"]]["involved_classes"])
            for turn in truth["ground_truth"]:
                for text in turn:
                    bfcl_decode.check_execute_string(text, allowed)
                    checked += 1
    assert checked > 3000
