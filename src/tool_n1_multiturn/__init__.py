"""Multi-turn tool-use RL with executed tools: BFCL's API classes as an environment in verl's tool agent loop.

* :mod:`tool_n1_multiturn.environment` — the executable environment (needs ``bfcl-eval``; no verl);
* :mod:`tool_n1_multiturn.agent_loop` — verl 0.9.1 ``BaseTool`` / ``ToolAgentLoop`` integration (needs verl).

A separate package from the core ``tool_n1`` (which stays standard-library only); its rewards live in the core
(:mod:`tool_n1.multiturn_reward`), so verl's reward workers need neither bfcl-eval nor this package.
"""
