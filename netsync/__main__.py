"""`python -m netsync ROLE`: the image's entrypoint, one role per container."""

from __future__ import annotations

import importlib
import sys

ROLES = {
    "agent": "netsync.agent",
    "analytics": "netsync.analytics",
    "orchestrator": "netsync.orchestrator",
    "projector": "netsync.projector",
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ROLES:
        print(f"usage: python -m netsync {{{'|'.join(ROLES)}}}  (configured by environment)", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(ROLES[argv[0]])
    except ModuleNotFoundError as e:
        print(f"netsync: role {argv[0]!r} is not available in this build ({e})", file=sys.stderr)
        return 2
    return int(module.main() or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
