"""Several Docker engines on this machine, standing in for several hosts (issue 32, docs/scale.md): each a
container of the engine image (Debian's dockerd) on one bridge network of the host engine, joined in a Swarm
whose attachable overlay network spans them. The host engine is never put in swarm mode: everything here
happens inside the engines' own daemons, reached over the private bridge only."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

import docker.errors
from docker.models.containers import Container

import docker
from harness import engine
from harness.errors import TopologyError
from harness.images import Images
from harness.topology.reaper import RunReaper, configure_reaper
from harness.topology.swarm import Member, form
from harness.waiting import Hopeless, WaitTimeout, wait_until

log = logging.getLogger(__name__)

ENGINE_LABEL = "solar-chaos.engine"  # which stand-in host of the run a container is
ENGINE_PORT = 2375  # dockerd's API inside the bridge: plain TCP, reachable from this machine only
# Capabilities by number (linux/capability.h), to name those the host engine's bounding set lacks.
CAPABILITIES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
    "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
    "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
    "PERFMON BPF CHECKPOINT_RESTORE"
).split()


def missing_capabilities(status: str) -> list[str]:
    """The capabilities absent from a process's bounding set (CapBnd of /proc/PID/status): a privileged
    container asks runc for all of them and fails where one is absent."""
    bnd = next(int(ln.split()[1], 16) for ln in status.splitlines() if ln.startswith("CapBnd:"))
    return [name for bit, name in enumerate(CAPABILITIES) if not bnd >> bit & 1]


def _almost_privileged() -> dict:
    """What stands in for --privileged where the host engine cannot grant it: every capability this machine's
    bounding set holds, no seccomp or AppArmor profile, every device; the image's entrypoint makes /sys,
    /proc/sys and the cgroup mounts writable (the API has no `systempaths=unconfined`: that is the CLI's)."""
    with open("/proc/self/status") as f:
        drop = missing_capabilities(f.read())
    return {
        "cap_add": ["ALL"],
        "cap_drop": drop,
        "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
        "device_cgroup_rules": ["a *:* rwm"],
    }


@dataclass
class Engine:
    """One stand-in host: its container on the host engine, its bridge address, its own API client."""

    name: str
    container: Container
    ip: str
    client: docker.DockerClient
    loaded: set[str] = field(default_factory=set)  # image ids loaded into it (load_image)

    @property
    def url(self) -> str:
        return f"tcp://{self.ip}:{ENGINE_PORT}"


def send_image(to: docker.DockerClient, ref: str, loaded: set[str], name: str) -> bool:
    """Bring an image of this machine's engine into the engine `to` (`docker save | docker load` over both
    APIs, no registry); False when that image id is there already (in `loaded`, the ids sent before, or
    found there). `name` names the engine in the log."""
    img = engine.client().images.get(ref)
    if img.id in loaded:
        return False
    try:
        to.images.get(img.id)
    except docker.errors.ImageNotFound:
        t0 = time.monotonic()
        to.images.load(img.save(named=True))
        log.info("engines: %s loaded into %s in %.1f s", ref, name, time.monotonic() - t0)
        loaded.add(img.id)
        return True
    loaded.add(img.id)
    return False


class LocalEngines:
    """`count` engines on this machine, in a Swarm (the first a manager, the rest workers; `managers` of them
    managers), with one attachable overlay network `overlay`. A context manager: everything it made (the
    engines, their volumes, the bridge) is removed on exit, on error, and by the run's reaper if the harness
    is killed; all of it carries the run's labels, so `solar-chaos clean` finds what is left."""

    def __init__(
        self,
        count: int,
        run_id: str | None = None,
        images: Images | None = None,
        managers: int = 1,
        overlay: str | None = "solar-chaos-overlay",
        storage_driver: str = "overlay2",
        reaper: bool = True,
    ) -> None:
        if count < 1 or not 1 <= managers <= count:
            raise TopologyError(f"{count} engines with {managers} managers: need 1 <= managers <= count")
        self.count = count
        self.managers = managers
        self.run_id = run_id or engine.new_run_id()
        self.images = images or Images()
        self.overlay = overlay
        self.storage_driver = storage_driver
        self.reaper = reaper  # False: the caller's reaper of the same run watches the engines already
        self.labels = engine.run_labels(self.run_id)
        self.bridge_name = f"solar-chaos-engines-{self.run_id}"
        self.engines: list[Engine] = []
        self.privileged: bool | None = None  # whether the host engine granted --privileged
        self._reaper: RunReaper | None = None
        self._bridge = None

    def __enter__(self) -> LocalEngines:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Engine]:
        return iter(self.engines)

    def __getitem__(self, i: int) -> Engine:
        return self.engines[i]

    # -- bring-up -------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> LocalEngines:
        image = self.images.ensure(("engine",))["engine"]
        if self.reaper:
            self._reaper = RunReaper(self.run_id, configure_reaper(self.images)).start()
        host = engine.client()
        self._bridge = host.networks.create(self.bridge_name, driver="bridge", labels=self.labels)
        self.engines = [self._start_engine(host, image, i + 1, timeout) for i in range(self.count)]
        self._swarm()
        if self.overlay is not None:
            self.engines[0].client.networks.create(
                self.overlay, driver="overlay", attachable=True, labels=self.labels
            )
        return self

    def _start_engine(self, host: docker.DockerClient, image: str, n: int, timeout: float) -> Engine:
        name = f"solar-chaos-engine{n}-{self.run_id}"
        labels = {**self.labels, ENGINE_LABEL: f"engine{n}"}
        volume = host.volumes.create(f"{name}-docker", labels=labels)
        command = [
            "--host=unix:///var/run/docker.sock",
            f"--host=tcp://0.0.0.0:{ENGINE_PORT}",
            "--tls=false",
            f"--storage-driver={self.storage_driver}",
        ]
        kwargs = {
            "name": name,
            "hostname": f"engine{n}",
            "command": command,
            "labels": labels,
            "network": self.bridge_name,
            "volumes": {volume.name: {"bind": "/var/lib/docker", "mode": "rw"}},
            "detach": True,
        }
        ctr = self._create_and_start(host, image, kwargs)
        ctr.reload()
        ip = ctr.attrs["NetworkSettings"]["Networks"][self.bridge_name]["IPAddress"]

        def answers() -> docker.DockerClient:
            try:  # the client asks the daemon its API version as it is made
                return docker.DockerClient(base_url=f"tcp://{ip}:{ENGINE_PORT}", timeout=120)
            except docker.errors.DockerException:
                ctr.reload()
                if ctr.status == "exited":
                    tail = ctr.logs(tail=15).decode(errors="replace")
                    raise Hopeless(f"{name}'s dockerd exited: {tail}") from None
                raise

        try:
            client = wait_until(answers, f"{name}'s dockerd to answer on {ip}:{ENGINE_PORT}", timeout, 0.2)
        except (WaitTimeout, Hopeless) as e:
            raise TopologyError(str(e)) from None
        return Engine(f"engine{n}", ctr, ip, client)

    def _create_and_start(self, host: docker.DockerClient, image: str, kwargs: dict) -> Container:
        """--privileged where the host engine grants it; else (runc: "unable to apply caps") the nearest it
        grants, decided on the first engine and kept for the others."""
        if self.privileged is not False:
            ctr = host.containers.create(image, privileged=True, **kwargs)
            try:
                ctr.start()
                self.privileged = True
                return ctr
            except docker.errors.APIError as e:
                ctr.remove(force=True)
                if "apply caps" not in str(e.explanation):
                    raise TopologyError(f"could not start {kwargs['name']}: {e.explanation}") from e
                log.info("engines: no --privileged here (%s); every capability the host grants instead", e)
                self.privileged = False
        ctr = host.containers.create(image, **_almost_privileged(), **kwargs)
        try:
            ctr.start()
        except docker.errors.APIError as e:
            raise TopologyError(f"could not start {kwargs['name']}: {e.explanation}") from e
        return ctr

    def _swarm(self) -> None:
        """The first engine inits the Swarm on its bridge address; the others join as managers or workers."""
        form([Member(e.name, e.client, e.ip) for e in self.engines], self.managers)

    # -- images ---------------------------------------------------------------

    def load_image(self, target: Engine, ref: str) -> bool:
        """Bring an image of the host engine into `target` (send_image); False when it was there already."""
        return send_image(target.client, ref, target.loaded, target.name)

    # -- teardown -------------------------------------------------------------

    def close(self) -> None:
        """Remove the engines (and so all they ran), their volumes and the bridge: only what this object made,
        found by the run's label; the host engine's own state is not touched."""
        for e in self.engines:
            e.client.close()
        problems = [p for res in engine.list_runs(self.run_id).values() for p in engine.remove_run(res)]
        self.engines = []
        if self._reaper is not None:
            self._reaper.close()
            self._reaper = None
        if problems:
            raise TopologyError(f"engines of run {self.run_id} not fully removed: {'; '.join(problems)}")
