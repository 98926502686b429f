"""What libfaketime costs an agent (docs/clock.md): the price of one wall-clock and one monotonic read in
netsync's image, without libfaketime, with it as the agents run it (the offset file re-read at most once a
second) and with FAKETIME_NO_CACHE=1 (re-read on every call). Run: flock /tmp/solar-chaos-heavy.lock
.venv/bin/python bench/clock_overhead.py"""

from __future__ import annotations

import json

from harness import engine
from harness.images import Images
from harness.topology.plan import CLOCK_ENV

PROBE = """
import json, time, timeit
n = 200_000
out = {f: min(timeit.repeat(f"time.{f}()", "import time", number=n, repeat=5)) / n * 1e9
       for f in ("time", "monotonic")}
print(json.dumps(out))
"""

SETUPS = {
    "without libfaketime": {},
    "as the agents run (cache 1 s)": CLOCK_ENV,
    "FAKETIME_NO_CACHE=1": {**CLOCK_ENV, "FAKETIME_NO_CACHE": "1"},
}


def main() -> None:
    ref = Images().ensure(("netsync",))["netsync"]
    client = engine.client()
    print(f"ns per call, best of 5 x 200,000, in {ref}")
    print(f"{'setup':34} {'time.time()':>12} {'monotonic()':>12}")
    for name, env in SETUPS.items():
        raw = client.containers.run(ref, ["python", "-c", PROBE], entrypoint=[], environment=env, remove=True)
        got = json.loads(raw.decode().strip().splitlines()[-1])
        print(f"{name:34} {got['time']:12.0f} {got['monotonic']:12.0f}")


if __name__ == "__main__":
    main()
