"""Speed and memory of the run-directory checker (`harness.checkers.judge`), against the floor of
parsing the same files with the standard library.

    .venv/bin/python bench/checker_speed.py              # 1,000,000 history lines
    .venv/bin/python bench/checker_speed.py --big        # and 10,000,000 (about 3 GB on disk)

For each size it writes a synthetic, valid run directory with bench/rundir_gen.py under
reports/bench/rundirs/<N>/ (kept, and reused while the generator's version, N and the seed are
the same), reads its files once so that every step finds them in the page cache, and then
measures, each in a fresh subprocess:

- `floor`: every line of the six files through the standard library's json.loads, read in
  binary, one call per line (scenario.json, not a JSON-lines file, in one call), nothing else;
- `judge`: `harness.checkers.judge(run_dir)`, which must find the run valid; a benchmark of a
  checker that finds anomalies in a valid run is wrong, so the script says so loudly and
  exits 1;
- `orjson` and `msgspec`: the same parse as the floor with orjson.loads, and with typed
  msgspec.Struct decoders (for information);
- `cli`: `solar-chaos check DIR --json` as a user types it (interpreter start, imports,
  verdict.json written); `--no-cli` leaves it out.

Each step reports `call s` (the work itself, timed inside the subprocess, after its imports),
`process s` (the subprocess from start to exit) and its peak RSS (os.wait4's ru_maxrss). The
goals: judge's call time <= the floor's (ratio <= 1.0), and a peak RSS under 1 GiB at
10,000,000 lines; a missed goal is printed, not an error. `--repeat R` runs floor and judge R
times each, interleaved, and keeps the fastest. `--profile` adds judge's time per phase (each
file's reading, each checker) and a cProfile of it, written beside the JSON. The results go
to reports/bench/checker-<UTC time>.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import rundir_gen  # noqa: E402

FILES = (
    "scenario.json",
    "history.jsonl",
    "stream.jsonl",
    "store.jsonl",
    "samples.jsonl",
    "analytics.jsonl",
)
GIB = 2**30
PARSERS = ("floor", "orjson", "msgspec")

# --------------------------------------------------------------------------- the workers
# Each runs in its own subprocess: `checker_speed.py --worker STEP DIR OUT`; it writes its
# figures as JSON to OUT.


def _parse_all(run_dir: Path, step: str) -> dict[str, Any]:
    """Parse every line of the six files; returns lines per file and the seconds."""
    if step == "floor":
        loads_scenario = loads_line = json.loads
        decoders = {}
    elif step == "orjson":
        import orjson

        loads_scenario = loads_line = orjson.loads
        decoders = {}
    else:
        loads_scenario, loads_line, decoders = _msgspec_decoders()
    t0 = time.perf_counter()
    counts: dict[str, int] = {}
    for name in FILES:
        path = run_dir / name
        if name.endswith(".json"):
            loads_scenario(path.read_bytes())
            counts[name] = 1
            continue
        loads = decoders.get(name, loads_line)
        n = 0
        with open(path, "rb") as f:
            for line in f:
                loads(line)
                n += 1
        counts[name] = n
    return {"call_s": time.perf_counter() - t0, "lines": counts}


def _msgspec_decoders() -> tuple[Any, Any, dict[str, Any]]:
    """Typed decoders: the checkers' own line types (harness/checkers/run.py), one per file."""
    import msgspec

    from harness.checkers.run import LINE_TYPES

    decoders = {name: msgspec.json.Decoder(line_type).decode for name, line_type in LINE_TYPES.items()}
    return msgspec.json.decode, msgspec.json.decode, decoders


def _judge(run_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    from harness.checkers import judge

    t1 = time.perf_counter()
    verdict = judge(run_dir)
    t2 = time.perf_counter()
    return {"call_s": t2 - t1, "import_s": t1 - t0, "verdict": verdict}


def _phases(run_dir: Path) -> dict[str, Any]:
    """judge's work, phase by phase: each file read into the Run's facts, then each checker."""
    from harness.checkers import CHECKERS, Run

    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    run = Run(run_dir)
    phases: dict[str, float] = {}
    peaks: dict[str, float] = {"start": peak()}
    t_all = time.perf_counter()
    for attr in ("settings", "history", "stream", "store", "samples", "analytics"):
        t0 = time.perf_counter()
        getattr(run, attr)
        phases[f"read {attr}"] = time.perf_counter() - t0
        peaks[f"read {attr}"] = peak()
    for checker in CHECKERS:
        t0 = time.perf_counter()
        checker.check(run)
        phases[f"check {checker.name}"] = time.perf_counter() - t0
        peaks[f"check {checker.name}"] = peak()
    return {"call_s": time.perf_counter() - t_all, "phases": phases, "peak_rss_mib_after": peaks}


def _profile(run_dir: Path, out: Path) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    from harness.checkers import judge

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    judge(run_dir)
    prof.disable()
    call_s = time.perf_counter() - t0
    pstats_path = out.with_suffix(".pstats")
    prof.dump_stats(pstats_path)
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    return {"call_s": call_s, "pstats": str(pstats_path), "text": text.getvalue()}


def worker(step: str, run_dir: Path, out: Path) -> int:
    if step in PARSERS:
        result = _parse_all(run_dir, step)
    elif step == "judge":
        result = _judge(run_dir)
    elif step == "phases":
        result = _phases(run_dir)
    elif step == "profile":
        result = _profile(run_dir, out)
    else:
        raise SystemExit(f"unknown step {step}")
    result["self_maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- the parent


def _spawn(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd` to its end; its wall time, exit status, peak RSS (wait4) and output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "process_s": wall,
            "rc": proc.returncode,
            "maxrss_mib": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "load1_before": load,
            "load1_after": os.getloadavg()[0],
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def run_step(step: str, run_dir: Path, keep: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = (keep or Path(tmp)) / f"{step}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", step, str(run_dir), str(out)]
        r = _spawn(cmd)
        if r["rc"] != 0 or not out.exists():
            raise RuntimeError(f"step {step} failed (exit {r['rc']}):\n{r['stderr'][-4000:]}")
        r.update(json.loads(out.read_text()))
    del r["stdout"], r["stderr"]
    return r


def run_cli(run_dir: Path) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("solar-chaos")
    cmd = [str(exe), "check", str(run_dir), "--json"] if exe.exists() else None
    if cmd is None:
        cmd = [sys.executable, "-m", "harness.cli", "check", str(run_dir), "--json"]
    r = _spawn(cmd)
    try:
        r["verdict"] = json.loads(r["stdout"])
    except ValueError:
        r["verdict"] = None
    r["call_s"] = None
    r["stderr"] = r["stderr"][-2000:]
    del r["stdout"]
    return r


def rundir(size: int, seed: int, base: Path) -> tuple[Path, dict[str, Any], bool]:
    """The cached run directory for `size` lines, generated when absent or stale."""
    d = base / str(size)
    try:
        info = json.loads((d / "rundir.json").read_text())
        fresh = (
            info.get("version") == rundir_gen.VERSION
            and info.get("lines_asked") == size
            and info.get("seed") == seed
            and all((d / name).is_file() for name in FILES)
        )
    except (OSError, ValueError):
        fresh = False
    if fresh:
        return d, info, True
    print(f"generating {size:,} history lines in {d} ...", flush=True)
    t0 = time.perf_counter()
    info = rundir_gen.generate(d, size, seed)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"  generated in {info['seconds']} s", flush=True)
    return d, info, False


def warm(run_dir: Path) -> dict[str, int]:
    """Read every file once, so that no step pays for the disk (each finds the page cache warm)."""
    sizes = {}
    for name in FILES:
        with open(run_dir / name, "rb", buffering=0) as f:
            n = 0
            while block := f.read(1 << 23):
                n += len(block)
        sizes[name] = n
    return sizes


def _verdict_summary(verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {
        "valid": verdict.get("valid"),
        "checks": {k: v.get("valid") for k, v in verdict.get("checks", {}).items()},
        "errors": {k: v["error"] for k, v in verdict.get("checks", {}).items() if v.get("error")},
        "anomalies": len(verdict.get("anomalies", [])),
        "first_anomalies": verdict.get("anomalies", [])[:10],
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _fmt_s(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def measure(size: int, args: argparse.Namespace, stamp: str) -> dict[str, Any]:
    d, info, cached = rundir(size, args.seed, args.rundirs)
    files = warm(d)
    print(
        f"\n{size:,} history lines: {d} ({'cached' if cached else 'generated'}; "
        f"{sum(files.values()) / 2**20:,.0f} MiB; stream {info['stream_lines']:,}, "
        f"store {info['store_lines']:,}, samples {info['samples_lines']:,} lines)",
        flush=True,
    )
    runs: dict[str, list[dict[str, Any]]] = {}

    def step(name: str) -> dict[str, Any]:
        print(f"  {name} ...", end=" ", flush=True)
        r = run_cli(d) if name == "cli" else run_step(name, d)
        runs.setdefault(name, []).append(r)
        call = f"call {r['call_s']:.2f} s, " if r.get("call_s") is not None else ""
        print(f"{call}process {r['process_s']:.2f} s, peak RSS {r['maxrss_mib']:,.0f} MiB", flush=True)
        return r

    verdict = None
    for _ in range(args.repeat):
        step("floor")
        verdict = step("judge")["verdict"]
        if verdict.get("valid") is not True:
            break
    summary = _verdict_summary(verdict)
    for r in runs["judge"]:
        r["verdict"] = _verdict_summary(r["verdict"])
    result: dict[str, Any] = {
        "lines": size,
        "rundir": str(d),
        "cached": cached,
        "generator": info,
        "file_bytes": files,
        "verdict": summary,
        "runs": runs,
    }
    if summary["valid"] is not True:
        return result
    for name in ("orjson", "msgspec"):
        step(name)
    if args.cli:
        r = step("cli")
        r["verdict"] = _verdict_summary(r["verdict"])
        if r["rc"] != 0:
            print(f"  !! solar-chaos check exited {r['rc']}: {r['stderr'][-500:]}", flush=True)
    if args.profile:
        print("  phases ...", end=" ", flush=True)
        ph = run_step("phases", d)
        result["phases"] = ph["phases"]
        result["phases_peak_rss_mib_after"] = ph["peak_rss_mib_after"]
        print(f"{ph['call_s']:.2f} s (peak RSS after each phase)", flush=True)
        for name, s in ph["phases"].items():
            print(f"    {name:<24} {s:7.2f} s {ph['peak_rss_mib_after'][name]:8,.0f} MiB", flush=True)
        print("  cProfile ...", end=" ", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        pr = run_step("profile", d, keep=args.out.parent)
        stem = args.out.parent / f"checker-{stamp}-profile-{size}"
        os.replace(pr["pstats"], stem.with_suffix(".pstats"))
        (args.out.parent / "profile.json").unlink(missing_ok=True)
        stem.with_suffix(".txt").write_text(pr["text"])
        result["profile"] = {
            "call_s": pr["call_s"],
            "pstats": str(stem.with_suffix(".pstats")),
            "text": str(stem.with_suffix(".txt")),
        }
        print(f"{pr['call_s']:.2f} s under cProfile: {stem.with_suffix('.txt')}", flush=True)
    return result


def best(runs: list[dict[str, Any]], key: str = "call_s") -> dict[str, Any]:
    return min(runs, key=lambda r: r[key] if r.get(key) is not None else r["process_s"])


def table(results: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| history lines | step | call s | process s | peak RSS MiB | call vs floor |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    labels = {
        "floor": "floor: json.loads per line",
        "judge": "judge(run_dir)",
        "orjson": "orjson.loads per line",
        "msgspec": "msgspec typed Structs",
        "cli": "solar-chaos check --json",
    }
    for res in results:
        floor = best(res["runs"]["floor"])["call_s"]
        for name in ("floor", "judge", "orjson", "msgspec", "cli"):
            if name not in res["runs"]:
                continue
            r = best(res["runs"][name])
            ratio = f"{r['call_s'] / floor:.2f}" if r.get("call_s") is not None else ""
            rows.append(
                f"| {res['lines']:,} | {labels[name]} | {_fmt_s(r.get('call_s'))} | {r['process_s']:.2f} "
                f"| {r['maxrss_mib']:,.0f} | {ratio} |"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--worker"]:
        return worker(argv[1], Path(argv[2]), Path(argv[3]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000000", help="history lines, comma-separated (default 1000000)")
    ap.add_argument("--big", action="store_true", help="also 10,000,000 lines (about 3 GB on disk)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="floor and judge runs per size; the fastest counts")
    ap.add_argument("--no-cli", dest="cli", action="store_false", help="leave out `solar-chaos check`")
    ap.add_argument("--profile", action="store_true", help="judge's time per phase, and a cProfile of it")
    ap.add_argument("--rundirs", type=Path, default=ROOT / "reports" / "bench" / "rundirs")
    ap.add_argument("--out", type=Path, default=None, help="default reports/bench/checker-<UTC time>.json")
    args = ap.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    if args.big and 10_000_000 not in sizes:
        sizes.append(10_000_000)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if args.out is None:
        args.out = ROOT / "reports" / "bench" / f"checker-{stamp}.json"
    elif not args.out.is_absolute():
        args.out = ROOT / args.out
    git = {  # before measuring: others may commit meanwhile
        "head": _git("rev-parse", "HEAD"),
        "checkers": _git("log", "-1", "--format=%H", "--", "harness/checkers", "harness/store.py"),
        "checkers_dirty": bool(_git("status", "--porcelain", "--", "harness/checkers", "harness/store.py")),
    }
    machine = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load1_start": os.getloadavg()[0],
    }
    print(
        f"checker speed, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine['cores']} cores, "
        f"load average {machine['load1_start']:.2f}",
        flush=True,
    )
    results = []
    invalid = None
    for size in sizes:
        res = measure(size, args, stamp)
        results.append(res)
        if res["verdict"]["valid"] is not True:
            invalid = res
            break
    machine["load1_end"] = os.getloadavg()[0]
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, "bench/checker_speed.py", *argv]),
        "machine": machine,
        "git": git,
        "goals": {"ratio_max": 1.0, "rss_max_mib_at_10m": 1024},
        "sizes": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    if invalid is not None:
        v = invalid["verdict"]
        bar = "!" * 78
        print(f"\n{bar}\n!! judge() found the synthetic VALID run directory {invalid['rundir']} NOT valid:")
        print(f"!! valid = {v['valid']}, checks = {v['checks']}")
        for name, err in v["errors"].items():
            print(f"!! {name} error: {err}")
        for a in v["first_anomalies"]:
            print(f"!! {a}")
        print(f"!! ({v['anomalies']} anomalies.) The checker, or bench/rundir_gen.py, is wrong:")
        print(f"!! no speed figure means anything until that is settled. Report: {args.out}\n{bar}")
        return 1
    print()
    print("\n".join(table(results)))
    print()
    for res in results:
        floor, judge = best(res["runs"]["floor"]), best(res["runs"]["judge"])
        ratio = judge["call_s"] / floor["call_s"]
        res["summary"] = {
            "ratio_check_floor": round(ratio, 3),
            "judge_call_s": round(judge["call_s"], 3),
            "floor_call_s": round(floor["call_s"], 3),
            "judge_peak_rss_mib": round(max(r["maxrss_mib"] for r in res["runs"]["judge"]), 1),
        }
        mark = "holds" if ratio <= 1.0 else "MISSED"
        print(f"{res['lines']:,} lines: judge / floor = {ratio:.2f} (goal <= 1.0): {mark}", end="")
        rss = res["summary"]["judge_peak_rss_mib"]
        if res["lines"] >= 10_000_000:
            print(f"; judge's peak RSS {rss:,.0f} MiB (goal < 1024): {'holds' if rss < 1024 else 'MISSED'}")
        else:
            print(f"; judge's peak RSS {rss:,.0f} MiB")
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
