"""netsync: the reference implementation of root.solar's agent contract (docs/contract.md).

Runs in the netsync image, one command per role: `python -m netsync agent|orchestrator|projector`.
"""

__version__ = "0.1.0"
