"""verl's tool agent loop over a BFCL multi-turn entry: calls are executed in the entry's environment.

The LLM server is scripted (fixed replies, tokenised by a tiny ChatML tokenizer); everything else is verl 0.9.1's
real ``ToolAgentLoop`` machinery (continuous-token prompt building, tool-call parsing, tool responses, masks) with
our parser, tools and loop. Needs verl and bfcl-eval (the ``rl-vllm`` environment).
"""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.rl_env
pytest.importorskip("verl")
pytest.importorskip("bfcl_eval", reason="bfcl-eval's multi-turn classes (installed --no-deps in the RL env)")

from tiny_model import build_tiny_tokenizer  # noqa: E402

ENTRY = {
    "id": "demo_0",
    "initial_config": {
        "GorillaFileSystem": {
            "root": {
                "alex": {
                    "type": "directory",
                    "contents": {"notes.txt": {"type": "file", "content": "budget draft"}},
                }
            }
        }
    },
    "involved_classes": ["GorillaFileSystem"],
    "next_turns": [[{"role": "user", "content": "Now copy notes.txt into the folder reports."}]],
    "ground_truth": [["mkdir(dir_name='reports')"], ["cp(source='notes.txt', destination='reports')"]],
}


def call(function, **arguments):
    return (
        f'<think>do it</think><tool_call>[{{"name": "{function}", "arguments": {json.dumps(arguments)}}}]</tool_call>'
    )


class ScriptedServer:
    """Stands in for the vLLM server: returns the next scripted reply; records every prompt it saw."""

    def __init__(self, tokenizer, replies):
        self.tokenizer, self.replies, self.prompts = tokenizer, list(replies), []

    async def generate(self, request_id, prompt_ids, sampling_params, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        self.prompts.append(self.tokenizer.decode(prompt_ids))
        ids = self.tokenizer.encode(self.replies.pop(0), add_special_tokens=False) + [self.tokenizer.eos_token_id]
        return TokenOutput(token_ids=ids, log_probs=[0.0] * len(ids))


def make_loop(tokenizer, server, response_length=2048):
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, ToolListWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from tool_n1_multiturn.agent_loop import BfclAgentLoop

    config = OmegaConf.create(
        {
            "actor_rollout_ref": {
                "rollout": {
                    "prompt_length": 4096,
                    "response_length": response_length,
                    "full_determinism": False,
                    "multi_turn": {
                        "max_user_turns": 8,
                        "max_assistant_turns": 8,
                        "max_parallel_calls": 4,
                        "max_tool_response_length": 1024,
                        "tool_response_truncate_side": "middle",
                        "format": "tool_n1",
                    },
                }
            },
            "data": {},
        }
    )
    return BfclAgentLoop(
        trainer_config=DictConfigWrap(config),
        server_manager=server,
        tokenizer=tokenizer,
        processor=None,
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(config.data),
        tools=ToolListWrap([]),
    )


def run_entry(tmp_path, replies, entry=ENTRY, response_length=2048):
    os.environ.setdefault("BFCL_PROJECT_ROOT", str(tmp_path / "bfcl"))
    tokenizer = build_tiny_tokenizer(tmp_path / "tok")
    server = ScriptedServer(tokenizer, replies)
    loop = make_loop(tokenizer, server, response_length)
    prompt = [{"role": "system", "content": "tools"}, {"role": "user", "content": "Make a folder reports."}]
    # verl binds the agent loop to the event loop it was built in
    output = loop.loop.run_until_complete(loop.run({}, raw_prompt=prompt, extra_info={"bfcl": json.dumps(entry)}))
    return loop, server, output, json.loads(output.extra_fields["bfcl_trajectory"])


def test_calls_are_executed_and_the_next_user_turn_follows(tmp_path):
    replies = [
        call("mkdir", dir_name="reports"),
        "<think>done</think>Created.",
        call("cp", source="notes.txt", destination="reports"),
        "<think>done</think>Copied.",
    ]
    loop, server, output, record = run_entry(tmp_path, replies)
    fs = loop.episode.env.instances["GorillaFileSystem"]
    # the environment's state: the folder exists and holds the copy
    reports = fs.root.contents["reports"]
    assert reports.contents["notes.txt"].content == "budget draft"
    assert record["calls_executed"] == 2 and record["state_changed"] is True
    assert [t["calls"] for t in record["turns"]] == [
        ["mkdir(dir_name='reports')"],
        ["cp(source='notes.txt', destination='reports')"],
    ]
    assert [t["state_ok"] for t in record["turns"]] == [True, True]
    # the tool result and the second user turn reached the model
    assert "Now copy notes.txt" in server.prompts[2]
    assert not server.replies
    # tool responses and user turns are masked out of the loss, the model's tokens are in it
    assert 0 in output.response_mask and 1 in output.response_mask


def test_refused_and_foreign_calls_never_run(tmp_path):
    replies = [
        call("__import__", name="os"),
        call("send_message", receiver_id="x", message="hi"),  # a MessageAPI function: not this entry's class
        call("mkdir", dir_name="a/../../etc"),
        "<think>stop</think>Giving up.",
        "<think>stop</think>Still nothing.",
    ]
    # verl's unknown-function answer lists every tool: a long tool response for the tiny byte-level tokenizer
    loop, server, output, record = run_entry(tmp_path, replies, response_length=16384)
    assert record["calls_executed"] == 1  # only mkdir passed the checks (and failed inside the file system)
    # an unknown name is answered by verl's loop, a known function of another class by our environment
    assert "Unknown function '__import__'" in server.prompts[1]
    assert "refused: function name 'send_message' is not a function of this entry" in server.prompts[2]
    assert [t["calls"] for t in record["turns"]] == [["mkdir(dir_name='a/../../etc')"], []]
    assert [t["state_ok"] for t in record["turns"]] == [False, False]


def test_bad_spec_is_recorded_not_raised(tmp_path):
    replies = [call("ls"), "<think>x</think>Done."]
    loop, server, output, record = run_entry(tmp_path, replies, entry={"initial_config": 3})
    assert record["error"].startswith("bad BFCL spec") and record["calls_executed"] == 0
    assert "Error during execution: bad BFCL spec" in server.prompts[1]
