"""`solar-chaos swarm HOSTS.yaml`: the engines a hosts file names made one Swarm, as a run over them needs
(docs/scale.md, "Running on several hosts"); harness/topology/swarm.py does it."""

from __future__ import annotations

import argparse
import sys

from harness.terminal import safe


def cmd_swarm(args: argparse.Namespace) -> int:
    from harness.scenario.hosts import read_hosts_file
    from harness.topology.fleet import STANDIN, target_of
    from harness.topology.placement import LOCAL, on_this_machine
    from harness.topology.ports import route_address
    from harness.topology.swarm import Member, form

    urls = [h["engine"] for h in read_hosts_file(args.hosts)]
    if standins := [u for u in urls if STANDIN.fullmatch(u)]:
        print(
            f"{safe(args.hosts)}: {', '.join(standins)}: stand-in engines make a Swarm of their own with "
            "each run; allowed here: local, ssh://, tcp://, unix:// engines",
            file=sys.stderr,
        )
        return 2
    targets = [target_of(u) for u in urls]
    try:
        # This machine's engines are reached by the others at this machine's address on its route to them.
        away = next((t.reach_ip for t in targets if not on_this_machine(t.name)), None)
        here = route_address(away) if away else "127.0.0.1"
        members = [Member(t.name, t.client, here if on_this_machine(t.name) else t.reach_ip) for t in targets]
        for line in form(members, managers=args.managers):
            print(safe(line))
    finally:
        for t in targets:
            if t.name != LOCAL:
                t.client.close()
    return 0
