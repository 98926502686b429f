"""Speed of one or more `surreal` binaries on netsync's projector workload, compared side by side.

    .venv/bin/python bench/surreal_speed.py                       # the cached binary of the project
    .venv/bin/python bench/surreal_speed.py --binary o3=PATH --binary o1=PATH --repeat 3
    .venv/bin/python bench/surreal_speed.py --engine memory --upserts 2000

No Docker: each binary runs as a plain process, `surreal start --user root --pass root --bind
127.0.0.1:PORT surrealkv://DIR` (a fresh temporary folder per run; `--engine memory` for the
in-memory store), with its log in that folder. Against it, one client with the Python SDK
(`AsyncSurreal` over ws, as the projector and harness/collect.py use it):

- connects, signs in and defines the namespace and database as netsync/surreal.py does;
- `--warmup` upserts, not counted;
- `--upserts N` upserts, one at a time like the projector, each netsync's own statement
  (`netsync.projection.UPSERT`: `UPSERT type::record($tb, $cid) CONTENT {...}`) with a fresh
  cid, a key among 16 and a stream sequence number; every tenth rewrites an earlier cid (a
  redelivery). Each upsert's time is taken on the client (perf_counter around the call);
- `SELECT cid, key, value, stream_seq FROM sentiment` as harness/collect.py reads the store,
  `--selects` times; the median is kept.

For each run it reports the upsert p50/p99/max in ms, the upsert throughput (upserts / the
loop's wall time), the SELECT's median time, the server's startup time (process start to
/health answering 200), the server's CPU seconds during the upsert loop (utime + stime from
/proc, per 1,000 upserts: robust when other work shares the cores, unlike the latencies) and
its peak RSS (VmHWM). `--repeat R` runs every binary R times, interleaved (a, b, a, b, ...),
so drift in the machine's load falls on all of them alike; the summary keeps each figure's
median over the repeats. Results go to reports/bench/surreal-speed-<UTC time>.json. The script
stops every server it started, including on Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.topology.ports import free_port  # noqa: E402
from netsync.projection import UPSERT  # noqa: E402

USER = PASSWORD = "root"
NS, DB, TABLE = "solar", "netsync", "sentiment"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cached_binaries() -> list[Path]:
    cache = Path(os.environ.get("SOLAR_CHAOS_CACHE") or Path.home() / ".cache/solar-chaos")
    return sorted(cache.glob("bin/surreal-*/surreal"))


def proc_cpu(pid: int) -> float:
    """utime + stime of a process in seconds, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_hwm_mb(pid: int) -> float | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def pct(sorted_values: list[float], q: float) -> float:
    """The q-quantile by nearest rank."""
    i = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[i]


class Server:
    """One `surreal start` on 127.0.0.1 in a temporary folder."""

    def __init__(self, binary: Path, engine: str) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="surreal-speed-"))
        self.port = free_port()
        store = f"surrealkv://{self.dir / 'db'}" if engine == "surrealkv" else "memory"
        self.cmd = [
            str(binary),
            "start",
            "--no-banner",
            "--log",
            "warn",
            "--user",
            USER,
            "--pass",
            PASSWORD,
            "--bind",
            f"127.0.0.1:{self.port}",
            store,
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rpc"

    def start(self, timeout: float = 60.0) -> None:
        log = open(self.dir / "surreal.log", "wb")  # noqa: SIM115 (closed with the process)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self.proc.returncode}; see {self.dir}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as r:
                    if r.status == 200:
                        self.startup_s = time.perf_counter() - t0
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.02)
        raise RuntimeError(f"{self.binary} did not answer /health within {timeout:.0f} s")

    def stop(self, keep: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def check(response: Any) -> Any:
    if not isinstance(response, dict) or response.get("error") is not None:
        raise RuntimeError(f"surreal error: {response!r}")
    for stmt in response.get("result") or []:
        if isinstance(stmt, dict) and stmt.get("status") == "ERR":
            raise RuntimeError(f"surreal statement failed: {stmt.get('result')}")
    return response["result"]


async def workload(server: Server, upserts: int, warmup: int, selects: int) -> dict[str, Any]:
    from surrealdb import AsyncSurreal

    db = AsyncSurreal(server.url)
    await db.connect()
    try:
        await db.signin({"username": USER, "password": PASSWORD})
        check(
            await db.query_raw(
                f"DEFINE NAMESPACE IF NOT EXISTS `{NS}`; USE NS `{NS}`; DEFINE DATABASE IF NOT EXISTS `{DB}`;"
            )
        )
        await db.use(NS, DB)

        seq = 0

        def params(i: int, prefix: str) -> dict[str, Any]:
            nonlocal seq
            seq += 1
            n = _cids_one(i)
            return {"tb": TABLE, "cid": f"{prefix}-{n:08d}", "key": f"k{n % 16}", "value": n, "seq": seq}

        for i in range(warmup):
            check(await db.query_raw(UPSERT, params(i, "warm")))

        assert server.proc is not None
        pid = server.proc.pid
        cpu0 = proc_cpu(pid)
        times: list[float] = []
        loop0 = time.perf_counter()
        for i in range(upserts):
            p = params(i, "cid")
            t = time.perf_counter()
            check(await db.query_raw(UPSERT, p))
            times.append(time.perf_counter() - t)
        loop_s = time.perf_counter() - loop0
        cpu_s = proc_cpu(pid) - cpu0

        select_times: list[float] = []
        rows = 0
        for _ in range(selects):
            t = time.perf_counter()
            result = check(await db.query_raw(f"SELECT cid, key, value, stream_seq FROM {TABLE}"))
            select_times.append(time.perf_counter() - t)
            rows = len(result[0]["result"])
        expected = len(set(_cids(upserts))) + len(set(_cids(warmup)))
        if rows != expected:
            raise RuntimeError(f"SELECT returned {rows} rows, expected {expected}")
        times.sort()
        return {
            "upserts": upserts,
            "upsert_p50_ms": round(pct(times, 0.50) * 1e3, 3),
            "upsert_p99_ms": round(pct(times, 0.99) * 1e3, 3),
            "upsert_max_ms": round(times[-1] * 1e3, 3),
            "upsert_mean_ms": round(statistics.fmean(times) * 1e3, 3),
            "upserts_per_s": round(upserts / loop_s, 1),
            "server_cpu_s": round(cpu_s, 2),
            "server_cpu_ms_per_1000": round(cpu_s / upserts * 1e6, 0),
            "rows": rows,
            "select_median_ms": round(statistics.median(select_times) * 1e3, 2),
            "select_all_ms": [round(s * 1e3, 2) for s in select_times],
            "server_peak_rss_mb": round(proc_hwm_mb(pid) or 0.0, 1),
        }
    finally:
        await db.close()


def _cids_one(i: int) -> int:
    """The cid number of the i-th upsert: every tenth rewrites the first of its ten (a redelivery)."""
    return i - i % 10 if i % 10 == 9 else i


def _cids(n: int) -> list[int]:
    return [_cids_one(i) for i in range(n)]


def parse_binaries(specs: list[str]) -> list[tuple[str, Path]]:
    out = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = "", spec
        p = Path(path).expanduser()
        if not p.is_file():
            raise SystemExit(f"no such binary: {p}")
        if not label:  # target-X/release/surreal: target-X; bin/surreal-V-HASH/surreal: surreal-V-HASH
            label = p.parent.parent.name if p.parent.name == "release" else p.parent.name
        out.append((label, p))
    return out


SUMMARY = (
    ("upsert_p50_ms", "p50 ms"),
    ("upsert_p99_ms", "p99 ms"),
    ("upserts_per_s", "upserts/s"),
    ("server_cpu_ms_per_1000", "srv CPU ms/1k"),
    ("select_median_ms", "SELECT ms"),
    ("startup_s", "start s"),
    ("server_peak_rss_mb", "RSS MB"),
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--binary",
        action="append",
        default=[],
        help="LABEL=PATH or PATH of a surreal binary (repeatable; default: the project's cached ones)",
    )
    ap.add_argument("--engine", choices=("surrealkv", "memory"), default="surrealkv")
    ap.add_argument("--upserts", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--selects", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the servers' folders and logs")
    args = ap.parse_args()

    binaries = parse_binaries(args.binary or [str(p) for p in cached_binaries()])
    if not binaries:
        raise SystemExit("no surreal binary given and none cached")

    servers: list[Server] = []

    def on_term(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    runs: list[dict[str, Any]] = []
    try:
        for r in range(args.repeat):
            for label, path in binaries:
                server = Server(path, args.engine)
                servers.append(server)
                server.start()
                try:
                    res = asyncio.run(workload(server, args.upserts, args.warmup, args.selects))
                finally:
                    server.stop(keep=args.keep)
                res.update(label=label, binary=str(path), repeat=r, startup_s=round(server.startup_s, 3))
                runs.append(res)
                print(
                    f"{label:>24} #{r}: p50 {res['upsert_p50_ms']:.2f} ms"
                    f"  p99 {res['upsert_p99_ms']:.2f} ms  {res['upserts_per_s']:.0f}/s"
                    f"  server CPU {res['server_cpu_ms_per_1000']:.0f} ms/1k"
                    f"  SELECT {res['select_median_ms']:.1f} ms ({res['rows']} rows)"
                    f"  start {server.startup_s:.2f} s",
                    flush=True,
                )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for s in servers:
            s.stop(keep=args.keep)

    summary = []
    for label, path in binaries:
        mine = [x for x in runs if x["label"] == label]
        size_mb = round(path.stat().st_size / 1e6, 1)
        row: dict[str, Any] = {"label": label, "binary": str(path), "size_mb": size_mb}
        for key, _ in SUMMARY:
            row[key] = round(statistics.median(x[key] for x in mine), 3)
        summary.append(row)
    print()
    head = f"{'binary':>24} {'MB':>6} " + " ".join(f"{h:>13}" for _, h in SUMMARY)
    print(head)
    for row in summary:
        print(f"{row['label']:>24} {row['size_mb']:>6} " + " ".join(f"{row[k]:>13}" for k, _ in SUMMARY))

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or ROOT / "reports/bench" / f"surreal-speed-{stamp}.json"
    if not out.is_absolute():
        out = ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(args, k) for k in ("engine", "upserts", "warmup", "selects", "repeat")}
    doc = {"settings": settings, "cores": os.cpu_count(), "summary": summary, "runs": runs}
    out.write_text(json.dumps(doc, indent=1))
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
