"""tool_n1.verl_console: verl's console metric lines as numbers."""

from tool_n1.verl_console import parse_step_metrics


def test_reads_step_lines_and_skips_everything_else():
    log = "\n".join(
        [
            "(TaskRunner pid=1) step:1 - actor/grad_norm:np.float64(0.79) - timing_s/step:40.2"
            " - critic/score/mean:0.1",
            "unrelated line with step: in it",
            "step:2 - actor/grad_norm:0.59 - name:'text' - bad:[1, - deep:" + "[" * 5000,
            "step:1 - val-aux/toolcall/score/mean@1:0.25",
        ]
    )
    steps = parse_step_metrics(log)
    assert steps[1] == {
        "step": 1.0,
        "actor/grad_norm": 0.79,
        "timing_s/step": 40.2,
        "critic/score/mean": 0.1,
        "val-aux/toolcall/score/mean@1": 0.25,
    }
    assert steps[2] == {"step": 2.0, "actor/grad_norm": 0.59}
    assert parse_step_metrics("") == {}
