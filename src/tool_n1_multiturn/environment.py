"""BFCL's stateful multi-turn API classes as an executable environment, one per trajectory.

An environment holds fresh instances of an entry's ``involved_classes`` (file system, messaging, trading, travel,
vehicle, ...) loaded from the entry's ``initial_config`` exactly as bfcl-eval's executor loads them
(``_load_scenario(deepcopy(config), long_context=...)``). A model's call reaches an instance only through
:func:`tool_n1.bfcl_decode.call_string` — the same checks the BFCL evaluation applies before its executor: the name
must be a function of the entry's own classes, argument names identifiers, values JSON literals that read back
unchanged. The checked string is then parsed once more and the keyword values read with ``ast.literal_eval``; the
bound method is called directly. Nothing is passed to ``eval``, and no global state is shared between environments
(bfcl-eval's executor keeps every instance in a module's globals).

Results are the strings bfcl-eval's executor produces (``str`` as is, a ``dict`` as JSON, anything else ``str()``,
an exception as ``"Error during execution: <message>"``), so the model sees what it would see in the benchmark.

Needs ``bfcl-eval`` (its multi-turn classes import cleanly without its dependencies, see ``verl/README.md``).

    from tool_n1_multiturn.environment import BfclEnvironment
    env = BfclEnvironment(entry["initial_config"], entry["involved_classes"])
    env.execute("ls", {"a": True})          # -> '{"current_directory_content": [...]}'
    env.state_matches(other_env)            # bfcl-eval's own state checker
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from tool_n1 import bfcl_decode

#: The multi-turn categories' classes (v3 multi-turn); BFCL's web-search and memory classes are agentic categories
#: with network or embedding-model dependencies and are not offered.
MULTI_TURN_CLASSES = (
    "GorillaFileSystem",
    "MathAPI",
    "MessageAPI",
    "TwitterAPI",
    "TicketAPI",
    "TradingBot",
    "TravelAPI",
    "VehicleControlAPI",
)
ERROR_PREFIX = "Error during execution: "


class EntryError(ValueError):
    """An entry that cannot be turned into an environment (unknown class, malformed config)."""


def _bfcl():
    # bfcl-eval creates result/score folders under BFCL_PROJECT_ROOT at import (default: beside its installed code)
    os.environ.setdefault("BFCL_PROJECT_ROOT", os.path.join(tempfile.gettempdir(), "tool_n1_bfcl"))
    from bfcl_eval.constants import executable_backend_config as backend
    from bfcl_eval.constants.eval_config import MULTI_TURN_FUNC_DOC_PATH

    return backend, MULTI_TURN_FUNC_DOC_PATH


@cache
def class_of(class_name: str) -> type:
    backend, _ = _bfcl()
    if class_name not in MULTI_TURN_CLASSES:
        raise EntryError(f"{class_name!r} is not a BFCL multi-turn class ({', '.join(MULTI_TURN_CLASSES)})")
    return getattr(importlib.import_module(backend.CLASS_FILE_PATH_MAPPING[class_name]), class_name)


@cache
def function_docs(class_name: str) -> tuple[dict[str, Any], ...]:
    """BFCL's function documents of one class (name, description, parameters in BFCL's schema dialect)."""
    backend, doc_path = _bfcl()
    class_of(class_name)  # validates the name
    text = (doc_path / backend.MULTI_TURN_FUNC_DOC_FILE_MAPPING[class_name]).read_text(encoding="utf-8")
    return tuple(json.loads(line) for line in text.splitlines() if line.strip())


@cache
def class_methods(class_name: str) -> frozenset[str]:
    """Callable names of a class: documented functions that are public methods (as the evaluation's guard)."""
    cls = class_of(class_name)
    public = {name for name, member in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_")}
    return frozenset({doc["name"] for doc in function_docs(class_name)} & public)


def owner_classes(involved_classes: Iterable[str]) -> dict[str, str]:
    """Function name → the class that owns it, for an entry's classes (the first class wins a shared name)."""
    owners: dict[str, str] = {}
    for class_name in involved_classes:
        for name in sorted(class_methods(class_name)):
            owners.setdefault(name, class_name)
    return owners


def keyword_arguments(class_name: str, name: str, call: ast.Call) -> dict[str, Any]:
    """The literal arguments of a checked call as keywords (BFCL's own ground truth has positional literals)."""
    params = [p for p in inspect.signature(getattr(class_of(class_name), name)).parameters.values()][1:]
    if len(call.args) > len(params):
        raise bfcl_decode.DecodeError(f"{name} takes {len(params)} arguments, {len(call.args)} given")
    arguments = {param.name: ast.literal_eval(arg) for param, arg in zip(params, call.args, strict=False)}
    for kw in call.keywords:
        arguments[kw.arg] = ast.literal_eval(kw.value)
    return arguments


def parse_call_string(text: str, involved_classes: Iterable[str]) -> tuple[str, dict[str, Any]]:
    """``name(...)`` (checked by :func:`tool_n1.bfcl_decode.check_execute_string`) → ``(name, keyword arguments)``."""
    owners = owner_classes(involved_classes)
    bfcl_decode.check_execute_string(text, owners)
    call = ast.parse(text, mode="eval").body
    return call.func.id, keyword_arguments(owners[call.func.id], call.func.id, call)


def result_text(value: Any) -> str:
    """bfcl-eval's executor's conversion of a method's return value."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def public_state(instance: Any) -> dict[str, Any]:
    """The attributes bfcl-eval's state checker compares (those not starting with ``_``)."""
    return {key: value for key, value in vars(instance).items() if not key.startswith("_")}


class BfclEnvironment:
    """Fresh instances of an entry's classes; :meth:`execute` is the only way a call reaches them."""

    def __init__(self, initial_config: Mapping[str, Any], involved_classes: Iterable[str], long_context: bool = False):
        if not isinstance(initial_config, Mapping):
            raise EntryError("initial_config is not an object")
        self.involved_classes = tuple(involved_classes)
        backend, _ = _bfcl()
        self.instances: dict[str, Any] = {}
        for class_name in self.involved_classes:
            instance = class_of(class_name)()
            if class_name not in backend.STATELESS_CLASSES:
                instance._load_scenario(copy.deepcopy(dict(initial_config.get(class_name, {}))), long_context)
            self.instances[class_name] = instance
        self.owners = owner_classes(self.involved_classes)
        #: every call string executed (after the checks), in order
        self.executed: list[str] = []

    @property
    def allowed(self) -> frozenset[str]:
        return frozenset(self.owners)

    def execute(self, name: Any, arguments: Any) -> str:
        """Run one model call; never raises: a refused or failing call returns BFCL's error text."""
        try:
            if not isinstance(arguments, dict):
                raise bfcl_decode.DecodeError("arguments are not an object")
            text = bfcl_decode.call_string(name, arguments, self.allowed)
        except bfcl_decode.DecodeError as exc:
            return f"{ERROR_PREFIX}refused: {exc}"
        return self.execute_string(text)

    def execute_string(self, text: str) -> str:
        """Run one checked call string (a model call written by :meth:`execute`, or a ground-truth call)."""
        try:
            name, keywords = parse_call_string(text, self.involved_classes)
        except (bfcl_decode.DecodeError, ValueError, SyntaxError, RecursionError, MemoryError) as exc:
            return f"{ERROR_PREFIX}refused: {str(exc)[:200]}"
        self.executed.append(text)
        try:
            return result_text(getattr(self.instances[self.owners[name]], name)(**keywords))
        except Exception as exc:  # a BFCL method raising on bad input is a result the model must see
            return f"{ERROR_PREFIX}{exc}"

    def state_check(self, ground_truth: BfclEnvironment) -> dict[str, Any]:
        """bfcl-eval's ``state_checker`` of this environment against a ground-truth one (``{"valid": bool, ...}``)."""
        from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import state_checker

        try:
            return state_checker(self.instances, ground_truth.instances)
        except Exception as exc:  # e.g. an attribute whose comparison raises
            return {"valid": False, "error_message": f"state checker failed: {type(exc).__name__}: {exc}"}

    def state_matches(self, ground_truth: BfclEnvironment) -> bool:
        return bool(self.state_check(ground_truth).get("valid"))

    def snapshot(self) -> dict[str, Any]:
        """A JSON-safe copy of every instance's compared state (for logs and tests; back references elided)."""
        return {name: _plain(public_state(inst), set()) for name, inst in self.instances.items()}


def _plain(value: Any, seen: set[int], depth: int = 0) -> Any:
    """JSON-safe value: objects become their public attributes; a cycle (a directory's parent) becomes ``"<ref>"``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if id(value) in seen or depth > 64:
        return "<ref>"
    seen = seen | {id(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v, seen, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, seen, depth + 1) for v in value]
    if hasattr(value, "__dict__"):
        return {k: _plain(v, seen, depth + 1) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def openai_tool_schema(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A BFCL function document as an OpenAI function tool (BFCL writes ``dict`` where JSON schema has ``object``)."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: fix(v) for k, v in node.items()}
            if out.get("type") == "dict":
                out["type"] = "object"
            elif out.get("type") == "float":
                out["type"] = "number"
            elif out.get("type") == "tuple":
                out["type"] = "array"
            return out
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    parameters = fix(doc.get("parameters") or {"type": "object", "properties": {}})
    parameters.setdefault("properties", {})
    parameters.setdefault("required", [])
    return {
        "type": "function",
        "function": {"name": doc["name"], "description": doc.get("description", ""), "parameters": parameters},
    }
