"""The abstention scorer (no bfcl-eval needed): classes per reply and the summary figures."""

from __future__ import annotations

import json

import bfcl_abstention


def _write(folder, category, results):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": f"{category}_{i}", "result": r}) for i, r in enumerate(results)]
    (folder / f"BFCL_v4_{category}_result.json").write_text("\n".join(lines) + "\n")


CALL = '<think>t</think><tool_call>[{"name": "f", "arguments": {}}]</tool_call>'
EMPTY = "<think>t</think><tool_call>[]</tool_call>"
TEXT = "<think>t</think>No function fits."
FAILED = "Error during inference: Connection refused"


def test_classes_and_figures(tmp_path):
    model = tmp_path / "m"
    _write(model / "non_live", "irrelevance", [EMPTY, EMPTY, TEXT, CALL, FAILED])
    _write(model / "live", "live_irrelevance", [TEXT, CALL])
    _write(model / "non_live", "simple_python", [CALL, CALL, CALL, EMPTY])
    _write(model / "multi_turn", "multi_turn_base", [[[CALL]]])  # not an abstention category: ignored
    report = bfcl_abstention.score_results(tmp_path, "m", "last")
    a, o = report["abstention"], report["over_abstention"]
    assert (a["replies"], a["declined"], a["declined_empty"], a["declined_text"], a["server_error"]) == (6, 4, 2, 2, 1)
    assert a["declined_rate"] == 66.67 and o["declined_rate"] == 25.0
    assert report["balanced"] == round((66.67 + 75.0) / 2, 2)
    assert set(report["per_category"]) == {"irrelevance", "live_irrelevance", "simple_python"}
    assert "66.67" in bfcl_abstention.render(report)
    assert bfcl_abstention.server_errors(tmp_path, "m") == {"irrelevance": ["irrelevance_4"]}
    assert bfcl_abstention.classify(None, "first") == "declined_text"
