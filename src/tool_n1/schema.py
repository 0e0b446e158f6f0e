"""Tool calls, tool specs and the canonical JSON used to compare them.

A *tool call* is ``{"name": str, "arguments": dict}`` (the Tool-N1 / Hermes format); a *tool spec* is an
OpenAI-style function description ``{"name", "description", "parameters": <JSON schema object>}``.

>>> canonical_json({"b": [1, 2], "a": {"y": 1, "x": 2}})
'{"a": {"x": 2, "y": 1}, "b": [1, 2]}'
>>> ToolCall.from_dict({"name": "f", "arguments": {"x": 1}}).key()
('f', '{"x": 1}')
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any


def canonical_json(value: Any) -> str:
    """The comparison form of a JSON value: ``json.dumps(value, sort_keys=True)``, as the original reward uses.

    Key order is irrelevant at every depth; list order, types (``1`` vs ``1.0`` vs ``"1"``) and whitespace inside
    strings are significant.
    """
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class ToolCall:
    """One function call: a name and its keyword arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> ToolCall:
        return cls(name=item["name"], arguments=item["arguments"])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}

    def key(self) -> tuple[str, str]:
        """``(name, canonical arguments)``: two calls are equal iff their keys are equal."""
        return (self.name, canonical_json(self.arguments))


# --------------------------------------------------------------------------- tool specs

_XLAM_TYPES = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "tuple": "array",
    "set": "array",
    "dict": "object",
    "object": "object",
    "any": "string",
}
_OPTIONAL = re.compile(r",?\s*optional\s*$", re.IGNORECASE)


def json_schema_type(type_text: Any) -> str:
    """Map a type name from ToolACE/xLAM/BFCL (``"str"``, ``"List[int]"``, ``"float, optional"``, ``"dict"``) to
    a JSON-schema type; unknown names become ``"string"``.

    >>> json_schema_type("List[int], optional"), json_schema_type("dict"), json_schema_type("Callable")
    ('array', 'object', 'string')
    """
    if not isinstance(type_text, str):
        return "string"
    return _json_schema_type(type_text)


@functools.lru_cache(maxsize=4096)
def _json_schema_type(type_text: str) -> str:
    base = _OPTIONAL.sub("", type_text.strip()).strip().lower()
    base = base.split("[", 1)[0].strip()
    if base.startswith("union") or "|" in base:
        return "string"
    return _XLAM_TYPES.get(base, "string")


@functools.lru_cache(maxsize=4096)
def _is_optional(type_text: str) -> bool:
    return _OPTIONAL.search(type_text) is not None


def _is_flat_param_map(parameters: dict[str, Any]) -> bool:
    """xLAM's ``{param: {"type", "description", "default"?}}`` map, as opposed to a JSON-schema object."""
    if "properties" in parameters:
        return False
    return all(isinstance(v, dict) for v in parameters.values())


def normalize_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """Any supported tool description → ``{"name", "description", "parameters": {"type": "object", ...}}``.

    Accepts OpenAI's ``{"type": "function", "function": {...}}`` wrapper, BFCL/ToolACE schemas (``"type": "dict"``)
    and xLAM's flat parameter maps (``"type": "str, optional"``, ``"default"``; a parameter is required when its type
    is not marked optional and it has no default). Raises ``ValueError`` with the reason for anything else.

    >>> normalize_tool({"name": "f", "description": "d", "parameters": {"q": {"type": "str"}}})["parameters"]
    {'type': 'object', 'properties': {'q': {'type': 'string'}}, 'required': ['q']}
    """
    if not isinstance(tool, dict):
        raise ValueError(f"tool is a {type(tool).__name__}, not an object")
    if tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        tool = tool["function"]
    name = tool.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("tool has no name")
    parameters = tool.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError(f"tool {name!r}: parameters is a {type(parameters).__name__}, not an object")
    if _is_flat_param_map(parameters):
        properties, required = {}, []
        for pname, spec in parameters.items():
            prop = {"type": json_schema_type(spec.get("type"))}
            if "description" in spec:
                prop["description"] = spec["description"]
            if "default" in spec:
                prop["default"] = spec["default"]
            properties[pname] = prop
            optional = isinstance(spec.get("type"), str) and _is_optional(spec["type"])
            if not optional and "default" not in spec:
                required.append(pname)
        schema = {"type": "object", "properties": properties, "required": required}
    else:
        properties = parameters.get("properties") or {}
        if not isinstance(properties, dict):
            raise ValueError(f"tool {name!r}: properties is not an object")
        required = parameters.get("required") or []
        if not isinstance(required, list):
            raise ValueError(f"tool {name!r}: required is a {type(required).__name__}, not a list")
        schema = {**parameters, "type": "object", "properties": properties, "required": list(required)}
    return {"name": name, "description": tool.get("description", ""), "parameters": schema}
