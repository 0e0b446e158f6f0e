"""BFCL multi-turn environments in verl 0.9.1's tool agent loop: executed calls, results as the next turn.

Three pieces, each on verl's own extension point:

* :class:`BfclTool` — a ``verl.tools.base_tool.BaseTool`` per BFCL function (schema from BFCL's function document).
  ``execute`` runs the call in the trajectory's :class:`~tool_n1_multiturn.environment.BfclEnvironment` (safe
  decoding, see there) and returns bfcl-eval's result text as the tool response.
* :class:`ToolN1ToolParser` — registered as ``multi_turn.format=tool_n1``: the Tool-N1 reply format
  (``<think>…</think><tool_call>[{"name", "arguments"}, …]</tool_call>``) read with the reward's parser
  (:func:`tool_n1.parsing.parse_response`, block policy ``block``), where verl's ``hermes`` parser expects one JSON
  object per block.
* :class:`BfclAgentLoop` — registered as agent ``bfcl_tool_agent`` (a subclass of verl's ``ToolAgentLoop``). Per
  trajectory it builds the entry's environment from ``extra_info["bfcl"]`` (initial config, involved classes, the
  later user turns, the ground-truth call strings), runs verl's generate → execute → respond loop, and when the model
  answers without a call it closes the user turn — bfcl-eval's state checker compares the environment with a
  ground-truth environment that executed the ground truth's calls up to this turn — and appends the next user turn.
  The record of every turn (reply texts, executed calls, state check) goes to ``extra_fields["bfcl_trajectory"]``
  (a JSON string), which verl hands to the reward as ``extra_info`` (:mod:`tool_n1.multiturn_reward`).

Config (``verl/config/ablation/multiturn.yaml``)::

    data.custom_cls.path=pkg://tool_n1_multiturn.agent_loop  data.custom_cls.name=BfclMultiTurnDataset
    actor_rollout_ref.rollout.multi_turn.enable=true
    actor_rollout_ref.rollout.multi_turn.format=tool_n1
    actor_rollout_ref.rollout.agent.default_agent_loop=bfcl_tool_agent

verl imports the dataset class in every agent-loop worker; importing this module registers the agent loop and the
parser there (verl's other hook, ``agent.agent_loop_config_path``, needs a file path that every node resolves).

The tools' schemas are listed in the Tool-N1 system prompt of each row (as in the single-turn recipe), so by default
the chat template gets no ``tools=`` (``template_tools=False``); ``template_tools=True`` passes them to the template
instead (Qwen's native hermes tool prompt).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from verl.experimental.agent_loop.agent_loop import register
from verl.experimental.agent_loop.tool_agent_loop import AgentState, ToolAgentLoop
from verl.experimental.agent_loop.tool_parser import FunctionCall, ToolParser
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.ray_utils import get_event_loop

from tool_n1.parsing import parse_response
from tool_n1_multiturn.environment import (
    ERROR_PREFIX,
    MULTI_TURN_CLASSES,
    BfclEnvironment,
    function_docs,
    openai_tool_schema,
)

logger = logging.getLogger(__name__)
AGENT_NAME = "bfcl_tool_agent"
PARSER_NAME = "tool_n1"
#: ``extra_info`` key of the entry's environment spec (a JSON string), and ``extra_fields`` key of the record
SPEC_KEY = "bfcl"
RECORD_KEY = "bfcl_trajectory"


class BfclMultiTurnDataset(RLHFDataset):
    """verl's ``RLHFDataset`` unchanged; naming it as ``data.custom_cls`` loads this module in every verl process
    that builds datasets or runs agent loops, which registers :class:`BfclAgentLoop` and :class:`ToolN1ToolParser`."""


@ToolParser.register(PARSER_NAME)
class ToolN1ToolParser(ToolParser):
    """The Tool-N1 reply format; ``block`` is the block policy of :func:`tool_n1.parsing.parse_response`."""

    block = "last"

    async def extract_tool_calls(
        self, responses_ids: list[int], tools: list[OpenAIFunctionToolSchema] | None = None
    ) -> tuple[str, list[FunctionCall]]:
        text = await get_event_loop().run_in_executor(None, self.tokenizer.decode, responses_ids)
        return text, calls_of(text, self.block)


def calls_of(text: str, block: str = "last") -> list[FunctionCall]:
    """The reply's calls as verl ``FunctionCall`` s (none when the reply holds no well-formed call list)."""
    parsed = parse_response(text, block=block)
    calls = []
    for call in parsed.calls or []:
        if isinstance(call.get("name"), str) and isinstance(call.get("arguments"), dict):
            calls.append(FunctionCall(name=call["name"], arguments=json.dumps(call["arguments"], ensure_ascii=False)))
    return calls


class BfclTool(BaseTool):
    """One BFCL function; runs in the trajectory's environment (``agent_data.bfcl_episode``)."""

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema):
        # BaseTool.__init__ prints every schema; with ~130 functions per worker that is only noise
        self.config = config
        self.tool_schema = tool_schema
        self.name = tool_schema.function.name

    async def execute(
        self, instance_id: str, parameters: dict[str, Any], **kwargs
    ) -> tuple[ToolResponse, float, dict]:
        episode = getattr(kwargs.get("agent_data"), "bfcl_episode", None)
        if episode is None or episode.env is None:
            reason = episode.error if episode is not None else "no BFCL environment for this trajectory"
            return ToolResponse(text=f"{ERROR_PREFIX}{reason}"), 0.0, {}
        return ToolResponse(text=episode.env.execute(self.name, parameters)), 0.0, {}


_TOOLS: list[BfclTool] = []


def bfcl_tools() -> list[BfclTool]:
    """One :class:`BfclTool` per function of the multi-turn classes (built once per process)."""
    if not _TOOLS:
        seen: set[str] = set()
        for class_name in MULTI_TURN_CLASSES:
            for doc in function_docs(class_name):
                if doc["name"] not in seen:
                    seen.add(doc["name"])
                    schema = OpenAIFunctionToolSchema.model_validate(openai_tool_schema(doc))
                    _TOOLS.append(BfclTool(config={"type": "native"}, tool_schema=schema))
    return _TOOLS


class Episode:
    """One trajectory's environment, ground-truth environment and per-turn record."""

    def __init__(self, spec_text: Any):
        self.env: BfclEnvironment | None = None
        self.truth: BfclEnvironment | None = None
        self.error = ""
        self.entry_id = ""
        self.next_turns: list[list[dict[str, str]]] = []
        self.ground_truth: list[list[str]] = []
        self.turns: list[dict[str, Any]] = [self._new_turn()]
        self.initial_state: dict[str, Any] = {}
        try:
            spec = json.loads(spec_text) if isinstance(spec_text, str) else spec_text
            if not isinstance(spec, dict):
                raise ValueError(f"extra_info[{SPEC_KEY!r}] is missing or not a JSON object")
            self.entry_id = str(spec.get("id", ""))
            self.next_turns = [list(turn) for turn in spec.get("next_turns", [])]
            self.ground_truth = [[str(call) for call in turn] for turn in spec.get("ground_truth", [])]
            long_context = bool(spec.get("long_context", False))
            self.env = BfclEnvironment(spec["initial_config"], spec["involved_classes"], long_context)
            self.truth = BfclEnvironment(spec["initial_config"], spec["involved_classes"], long_context)
            self.initial_state = self.env.snapshot()
        except Exception as exc:  # a bad row is recorded and scored 0, never ends the run
            self.env = self.truth = None
            self.error = f"bad BFCL spec: {type(exc).__name__}: {str(exc)[:200]}"
            logger.warning("%s (entry %r)", self.error, self.entry_id)

    @staticmethod
    def _new_turn() -> dict[str, Any]:
        return {"texts": [], "calls": [], "state_ok": None}

    @property
    def turn_index(self) -> int:
        return len(self.turns) - 1

    def add_reply(self, text: str) -> None:
        self.turns[-1]["texts"].append(text)

    def has_next_turn(self) -> bool:
        return self.turn_index < len(self.next_turns)

    def close_turn(self) -> None:
        """Record the calls executed in this turn and bfcl-eval's state check against the ground truth so far."""
        turn = self.turns[-1]
        if turn["state_ok"] is not None or self.env is None or self.truth is None:
            return
        done = sum(len(t["calls"]) for t in self.turns[:-1])
        turn["calls"] = self.env.executed[done:]
        if self.turn_index < len(self.ground_truth):
            for call in self.ground_truth[self.turn_index]:
                self.truth.execute_string(call)
        turn["state_ok"] = self.env.state_matches(self.truth)

    def open_next_turn(self) -> list[dict[str, str]]:
        self.close_turn()
        messages = self.next_turns[self.turn_index]
        self.turns.append(self._new_turn())
        return messages

    def record(self) -> dict[str, Any]:
        self.close_turn()
        changed = self.env is not None and self.env.snapshot() != self.initial_state
        return {
            "id": self.entry_id,
            "error": self.error,
            "turns": self.turns,
            "num_turns": 1 + len(self.next_turns),
            "calls_executed": len(self.env.executed) if self.env is not None else 0,
            "state_changed": changed,
        }


@register(AGENT_NAME)
class BfclAgentLoop(ToolAgentLoop):
    """verl's ``ToolAgentLoop`` over a BFCL multi-turn entry: all user turns, executed calls, per-turn records."""

    def __init__(self, *args, block: str = "last", template_tools: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.tools:
            self.tools = {tool.name: tool for tool in bfcl_tools()}
        schemas = [tool.tool_schema.model_dump(exclude_unset=True, exclude_none=True) for tool in self.tools.values()]
        self.tool_schemas = schemas if template_tools else None
        if isinstance(self.tool_parser, ToolN1ToolParser):
            self.tool_parser.block = block
        self.episode: Episode | None = None

    async def run(self, sampling_params: dict[str, Any], **kwargs):
        extra_info = kwargs.get("extra_info") or {}
        self.episode = Episode(extra_info.get(SPEC_KEY) if isinstance(extra_info, dict) else None)
        output = await super().run(sampling_params, **kwargs)
        output.extra_fields[RECORD_KEY] = json.dumps(self.episode.record(), ensure_ascii=False)
        return output

    async def _handle_pending_state(self, agent_data, sampling_params: dict[str, Any]) -> AgentState:
        agent_data.bfcl_episode = self.episode
        return await super()._handle_pending_state(agent_data, sampling_params)

    async def _handle_generating_state(self, agent_data, sampling_params: dict[str, Any], ignore_termination=False):
        state = await super()._handle_generating_state(agent_data, sampling_params, ignore_termination)
        text = self.tokenizer.decode(agent_data.response_ids, skip_special_tokens=True)
        self.episode.add_reply(text)
        if state != AgentState.TERMINATED or agent_data.tool_calls or not self._budget_left(agent_data):
            return state
        if not self.episode.has_next_turn() or self.episode.env is None:
            return state
        # the model answered this user turn without a call: the next user turn follows
        previous = list(agent_data.messages)
        agent_data.messages.extend(self.episode.open_next_turn())
        merge, mask, logprobs = await self.ct_merge_context_msg(
            previous,
            agent_data.messages,
            agent_data.prompt_ids,
            agent_data.response_mask,
            agent_data.response_logprobs or None,
            tools=getattr(agent_data, "_active_tool_schemas", self.tool_schemas),
        )
        if len(mask) >= self.response_length:
            return AgentState.TERMINATED
        agent_data.prompt_ids = merge.token_ids
        agent_data.response_mask = mask
        if agent_data.response_logprobs:
            agent_data.response_logprobs = logprobs or []
        return AgentState.GENERATING

    def _budget_left(self, agent_data) -> bool:
        if len(agent_data.response_mask) >= self.response_length:
            return False
        if self.max_assistant_turns and agent_data.assistant_turns >= self.max_assistant_turns:
            return False
        return not (self.max_user_turns and agent_data.user_turns >= self.max_user_turns)
