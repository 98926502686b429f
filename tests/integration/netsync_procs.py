"""Real servers and netsync roles as plain processes on 127.0.0.1, for process-level tests.

No Docker: NATS and SurrealDB run from the cached binaries (`Images.binary`), each on
free ports, each a context manager that always kills what it started. `stop()` and
`start()` again keep the ports and the data folder, so an outage and its recovery
can be staged. Readiness is always a condition waited on with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from harness.images import Images
from harness.paths import ROOT
from harness.topology.ports import free_port
from harness.waiting import await_until, wait_until

READY_TIMEOUT = 60.0


def http_status(url: str, timeout: float = 2.0) -> int:
    """The HTTP status of a GET, or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class _Process:
    """One child process with its output appended to a log file; `start()` may be
    called again after `stop()`. Killed on context exit, whatever happened."""

    name = "process"

    def __init__(self, workdir: Path | None) -> None:
        self._own_dir = workdir is None
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-")) if workdir is None else Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # subclasses say what to run and when it is ready
    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def _spawn(self, cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.proc.pid})")  # type: ignore[union-attr]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd
        )

    def _wait_ready(self, timeout: float) -> None:
        def probe() -> bool | str:
            if not self.running:
                return "exited"
            return self.ready()

        got = wait_until(probe, f"{self.name} to be ready", timeout=timeout, interval=0.05)
        if got == "exited":
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode if self.proc else '?'} before it was ready; "
                f"last lines of {self.log_path}:\n{_tail(self.log_path)}"
            )

    def start(self, timeout: float = READY_TIMEOUT) -> _Process:
        self._spawn(self.command())
        self._wait_ready(timeout)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def send_signal(self, sig: int) -> None:
        if self.running:
            self.proc.send_signal(sig)  # type: ignore[union-attr]

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int | None:
        """Send `sig` (SIGKILL: a crash) and reap the process; SIGKILL if it outlives `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def __enter__(self) -> Any:
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused process dies as well
        self.stop(signal.SIGKILL)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class NatsServer(_Process):
    """nats-server with JetStream; its store and ports outlive `stop()`."""

    name = "nats"

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.binary = Images("offline").binary("nats-server")
        self.port = free_port()
        self.monitor_port = free_port()
        self.store_dir = self.dir / "jetstream"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store_dir),
            "-m",
            str(self.monitor_port),
        ]

    def ready(self) -> bool:
        # /healthz answers 200 once the client port and JetStream are up.
        return http_status(f"{self.monitor_url}/healthz") == 200


class SurrealServer(_Process):
    """SurrealDB on a SurrealKV folder; `stop()` is a SIGKILL, `start()` keeps the data."""

    name = "surreal"
    user = "root"
    password = "root"

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.binary = Images("offline").binary("surreal")
        self.port = free_port()
        self.data_dir = self.dir / "db"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rpc"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "start",
            "--user",
            self.user,
            "--pass",
            self.password,
            "--bind",
            f"127.0.0.1:{self.port}",
            f"surrealkv://{self.data_dir}",
        ]

    def ready(self) -> bool:
        return http_status(f"{self.http_url}/health") == 200


class NetsyncProcess(_Process):
    """`python -m netsync ROLE` from the checkout, configured by `env` (over this
    process's environment). Its stdout (the JSON log lines) goes to `stdout_path`,
    its stderr to `stderr_path`; `start()` again appends to both."""

    def __init__(
        self, role: str, env: dict[str, str], workdir: Path | None = None, name: str | None = None
    ) -> None:
        self.name = name or role
        super().__init__(workdir)
        self.role = role
        self.env = dict(env)
        self.stdout_path = self.dir / f"{self.name}.stdout.log"
        self.stderr_path = self.dir / f"{self.name}.stderr.log"
        self.log_path = self.stderr_path
        self._out: IO[bytes] | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "netsync", self.role]

    def start(self, timeout: float = READY_TIMEOUT) -> NetsyncProcess:
        """Start the role; readiness is the caller's (`wait_http_ready`)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self._out = open(self.stdout_path, "ab")
        self._log = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=self._out, stderr=self._log, stdin=subprocess.DEVNULL, env=env, cwd=ROOT
        )
        return self

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 30.0) -> int | None:
        rc = super().stop(sig, timeout)
        if self._out is not None:
            self._out.close()
            self._out = None
        return rc

    def kill(self) -> int | None:
        """SIGKILL: a crash, nothing gets to finish."""
        return self.stop(signal.SIGKILL)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for the exit; the exit code."""
        return self.stop(signal.SIGTERM, timeout)

    def pause(self) -> None:
        self.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.send_signal(signal.SIGCONT)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def _http_probe(self, port: int, path: str) -> bool | str:
        if not self.running:
            return "exited"
        return http_status(f"http://127.0.0.1:{port}{path}") == 200

    def _exited_error(self) -> RuntimeError:
        return RuntimeError(
            f"{self.name} exited with {self.returncode} before it answered HTTP; stderr:\n"
            f"{_tail(self.stderr_path)}\nstdout:\n{_tail(self.stdout_path)}"
        )

    def wait_http_ready(self, port: int, path: str = "/healthz", timeout: float = READY_TIMEOUT) -> None:
        got = wait_until(
            lambda: self._http_probe(port, path), f"{self.name} HTTP on :{port}", timeout=timeout
        )
        if got == "exited":
            raise self._exited_error()

    async def await_http_ready(
        self, port: int, path: str = "/healthz", timeout: float = READY_TIMEOUT
    ) -> None:
        import asyncio

        async def probe() -> bool | str:
            return await asyncio.to_thread(self._http_probe, port, path)

        got = await await_until(probe, f"{self.name} HTTP on :{port}", timeout=timeout)
        if got == "exited":
            raise self._exited_error()

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (over all starts); other lines skipped."""
        out = []
        try:
            text = self.stdout_path.read_text(errors="replace")
        except OSError:
            return out
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> NetsyncProcess:
        self.start()
        return self


class ToxiproxyServer(_Process):
    """toxiproxy-server on a free port; proxies are made with `create_proxy` (sync) and
    toxics with the async client (`harness.toxiproxy.Toxiproxy(server.url)`)."""

    name = "toxiproxy"

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.binary = Images("offline").binary("toxiproxy-server")
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(self.binary), "-host", "127.0.0.1", "-port", str(self.port)]

    def ready(self) -> bool:
        return http_status(f"{self.url}/version") == 200

    def create_proxy(self, name: str, upstream: str) -> str:
        """A proxy on a free 127.0.0.1 port to `upstream` (host:port); its listen address."""
        listen = f"127.0.0.1:{free_port()}"
        body = json.dumps({"name": name, "listen": listen, "upstream": upstream, "enabled": True}).encode()
        req = urllib.request.Request(
            f"{self.url}/proxies", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())["listen"]


# Generous for a busy 2-core machine: the contract's defaults (80 ms, 400 ms) are for containers.
AGENT_TEST_ENV = {"NETSYNC_INTENT_TIMEOUT_MS": "1000", "NETSYNC_COMMIT_TIMEOUT_MS": "2000"}


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Cluster:
    """An orchestrator, `agents` agents (`agent-1`...) and optionally a projector, as
    processes on 127.0.0.1, wired as the contract says: every agent knows the others and
    the orchestrator by multiaddr ending in the peer id of its seed (the name), and
    journals into its own folder under `workdir`. The orchestrator reaches NATS at
    `orchestrator_nats_url` when given (a Toxiproxy proxy, say), else directly.

    `env` is added to every agent's environment (over `AGENT_TEST_ENV`), `agent_env`
    per agent by name; `start()` waits for every HTTP port, the orchestrator's NATS
    connection (`wait_nats`) and every agent's peer and orchestrator connections."""

    def __init__(
        self,
        workdir: Path,
        nats: NatsServer,
        agents: int = 3,
        *,
        surreal: SurrealServer | None = None,
        env: dict[str, str] | None = None,
        agent_env: dict[str, dict[str, str]] | None = None,
        orchestrator_env: dict[str, str] | None = None,
        orchestrator_nats_url: str | None = None,
    ) -> None:
        from netsync.p2p import peer_id_for_seed

        self.dir = Path(workdir)
        self.nats = nats
        self.names = [f"agent-{i}" for i in range(1, agents + 1)]
        self.p2p_port = {name: free_port() for name in [*self.names, "orchestrator"]}
        self.http_port = {name: free_port() for name in [*self.names, "orchestrator", "projector"]}
        addr = {n: f"/ip4/127.0.0.1/tcp/{p}/p2p/{peer_id_for_seed(n)}" for n, p in self.p2p_port.items()}

        self.orchestrator = NetsyncProcess(
            "orchestrator",
            {
                "NETSYNC_NAME": "orchestrator",
                "NETSYNC_IDENTITY_SEED": "orchestrator",
                "NETSYNC_LISTEN": f"/ip4/127.0.0.1/tcp/{self.p2p_port['orchestrator']}",
                "NETSYNC_NATS_URL": orchestrator_nats_url or nats.url,
                "NETSYNC_HTTP_PORT": str(self.http_port["orchestrator"]),
                **(orchestrator_env or {}),
            },
            workdir=self.dir / "orchestrator",
        )
        self.agents: dict[str, NetsyncProcess] = {}
        for name in self.names:
            self.agents[name] = NetsyncProcess(
                "agent",
                {
                    **AGENT_TEST_ENV,
                    "NETSYNC_NAME": name,
                    "NETSYNC_IDENTITY_SEED": name,
                    "NETSYNC_LISTEN": f"/ip4/127.0.0.1/tcp/{self.p2p_port[name]}",
                    "NETSYNC_PEERS": ",".join(f"{n}={addr[n]}" for n in self.names if n != name),
                    "NETSYNC_ORCHESTRATOR": addr["orchestrator"],
                    "NETSYNC_JOURNAL_DIR": str(self.dir / name / "journal"),
                    "NETSYNC_HTTP_PORT": str(self.http_port[name]),
                    **(env or {}),
                    **(agent_env or {}).get(name, {}),
                },
                workdir=self.dir / name,
                name=name,
            )
        self.projector: NetsyncProcess | None = None
        if surreal is not None:
            self.projector = NetsyncProcess(
                "projector",
                {
                    "NETSYNC_NAME": "projector",
                    "NETSYNC_NATS_URL": nats.url,
                    "NETSYNC_SURREAL_URL": surreal.ws_url,
                    "NETSYNC_HTTP_PORT": str(self.http_port["projector"]),
                },
                workdir=self.dir / "projector",
            )

    # -- addresses -------------------------------------------------------------------

    def url(self, name: str) -> str:
        """The HTTP base URL of `name` (an agent, `orchestrator` or `projector`)."""
        return f"http://127.0.0.1:{self.http_port[name]}"

    @property
    def processes(self) -> dict[str, NetsyncProcess]:
        procs = {"orchestrator": self.orchestrator, **self.agents}
        if self.projector is not None:
            procs["projector"] = self.projector
        return procs

    # -- starting and waiting --------------------------------------------------------

    def start(self, wait_nats: bool = True, timeout: float = READY_TIMEOUT) -> Cluster:
        for proc in self.processes.values():  # all at once: each spends seconds importing
            proc.start()
        for name, proc in self.processes.items():
            proc.wait_http_ready(self.http_port[name], timeout=timeout)
        if wait_nats:
            self.wait_orchestrator_nats(True, timeout)
        self.wait_connected(timeout=timeout)
        return self

    def restart_agent(self, name: str, timeout: float = READY_TIMEOUT) -> None:
        """Start `name` again (same environment, same journal) and wait for its connections."""
        self.agents[name].start()
        self.agents[name].wait_http_ready(self.http_port[name], timeout=timeout)
        self.wait_connected([name], timeout=timeout)

    def connected(self, names: list[str] | None = None) -> bool | str:
        """Every running agent in `names` connected to all its running peers and the orchestrator."""
        running = [n for n in self.names if self.agents[n].running]
        for name in names or running:
            proc = self.agents[name]
            if not proc.running:
                return f"{name} exited"
            health = _get_json(f"{self.url(name)}/healthz")
            expected = {n for n in running if n != name}
            if not expected <= set(health["peers_connected"]) or not health["orchestrator_connected"]:
                return False
        return True

    def wait_connected(self, names: list[str] | None = None, timeout: float = READY_TIMEOUT) -> None:
        got = wait_until(lambda: self.connected(names), "the agents' connections", timeout=timeout)
        if isinstance(got, str):
            raise RuntimeError(f"{got}; stderr:\n{_tail(self.agents[got.split()[0]].stderr_path)}")

    async def await_connected(self, names: list[str] | None = None, timeout: float = READY_TIMEOUT) -> None:
        import asyncio

        async def probe() -> bool | str:
            return await asyncio.to_thread(self.connected, names)

        got = await await_until(probe, "the agents' connections", timeout=timeout)
        if isinstance(got, str):
            raise RuntimeError(f"{got}; stderr:\n{_tail(self.agents[got.split()[0]].stderr_path)}")

    def orchestrator_nats(self) -> bool:
        """Whether the orchestrator's healthz says it is connected to NATS."""
        return bool(_get_json(f"{self.url('orchestrator')}/healthz")["nats"])

    def wait_orchestrator_nats(self, connected: bool, timeout: float = READY_TIMEOUT) -> None:
        wait_until(
            lambda: self.orchestrator_nats() is connected,
            f"the orchestrator's NATS connection to be {'up' if connected else 'down'}",
            timeout=timeout,
        )

    # -- context ---------------------------------------------------------------------

    def stop(self) -> None:
        for proc in self.processes.values():
            proc.__exit__(None, None, None)

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def surreal_rows(
    surreal: SurrealServer, ns: str = "solar", db_name: str = "netsync"
) -> dict[str, dict]:
    """Every row of `sentiment`, by cid, read over a fresh connection; two rows for one
    cid fail the calling test on the spot."""
    from surrealdb import AsyncSurreal

    db = AsyncSurreal(surreal.ws_url)
    try:
        await db.connect()
        await db.signin({"username": surreal.user, "password": surreal.password})
        await db.use(ns, db_name)
        got = await db.query("SELECT * FROM sentiment")
    finally:
        await db.close()
    out: dict[str, dict] = {}
    for row in got or []:
        assert row["cid"] not in out, f"two rows for cid {row['cid']}"
        out[row["cid"]] = row
    return out
