"""The agent: takes intents over HTTP, gathers a quorum of peers over libp2p, hands
decisions to the orchestrator, and keeps what cannot be committed now in the
journaled pending-commit buffer until it can (docs/contract.md). All trio."""

from __future__ import annotations

import signal
import tempfile
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import unquote

import trio
from prometheus_client import generate_latest

from netsync import buggify
from netsync.agent_metrics import Metrics
from netsync.answers import AnswerLog
from netsync.buffer import BufferFull, Pending, PendingCommitBuffer, first_attempt_age, this_boot
from netsync.http import BodyRefused, ClientGone, lifespan, read_body, respond, respond_json, serve_trio
from netsync.intents import Answer, BadRequest, new_cid, parse_intent
from netsync.logs import Log
from netsync.p2p import DECISION, SENTIMENT, Node, PeerTimeout, PeerUnavailable, peer_info
from netsync.replay import JOURNAL_LATE_S, journal_after_answer, journal_late_loop, replay_loop
from netsync.settings import AgentSettings
from netsync.telemetry import publish_health, pubsub

# What an agent keeps grows only to these bounds (docs/contract.md, "Resources"), each reached within
# minutes at a soak's rate, so that memory is flat over most of a long run.
ANSWERS_KEPT = 50_000  # answers, for GET /intents/{cid} and repeated POSTs (also on disk)
VOTES_KEPT = 20_000  # votes: a proposal is re-sought only while its intent is undecided
KEPT_RECORD = 4096  # buggify keep-every-intent: the size of the record it keeps of each intent


class Agent:
    def __init__(self, settings: AgentSettings, log: Log | None = None) -> None:
        self.s = settings
        self.log = log or Log(settings.name)
        self.node = Node(settings.identity_seed, settings.listen)
        self.peers = {name: peer_info(addr) for name, addr in settings.peers.items()}
        self.orchestrator = peer_info(settings.orchestrator)
        self.bugs = settings.bugs  # netsync.buggify
        self.started_at = time.time()
        self.started_mono = time.monotonic()
        self.boot = this_boot()  # a replay's age counts on the monotonic clock within one boot
        cap = settings.buffer_cap
        if "buffer-unbounded" in self.bugs:
            cap = 1 << 30
        elif "cap-off-by-one" in self.bugs:  # buggify: the buffer's own check is off by one as well
            cap += 1
        self.buffer = PendingCommitBuffer(
            settings.journal_dir,
            cap,
            fsync="journal-no-fsync" not in self.bugs,  # buggify: appends never fsynced
        )
        # buggify journal-late: (when it reaches the journal, entry) answered 202, not yet journaled
        self.unjournaled: list[tuple[float, Pending]] = []
        self.metrics = Metrics(settings.buffer_cap)
        # buggify forget-answers: kept where no restart finds them again, as if in memory only.
        forget = "forget-answers" in self.bugs
        self.answers = AnswerLog(tempfile.mkdtemp() if forget else settings.journal_dir, ANSWERS_KEPT)
        self.inflight: dict[str, trio.Event] = {}
        self.kept: list[str] = []  # buggify keep-every-intent: one record per decided intent, forever
        self.agreed: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self.peer_ok: dict[str, bool] = {}
        self.reserved = 0
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._refresh_gauges()
        buggify.announce(self.bugs, "agent", self.log)

    # -- voting (the peer side of /root-solar/sentiment/1.0.0) -------------------

    def vote(self, cid: str, key: Any, value: Any) -> tuple[bool, str | None]:
        if not isinstance(value, int) or isinstance(value, bool):
            return False, "value is not an integer"
        if not self.s.value_min <= value <= self.s.value_max:
            return False, f"value outside [{self.s.value_min}, {self.s.value_max}]"
        prior = self.agreed.get(cid)
        if prior is not None and prior != (key, value):
            return False, "agreed to a different proposal under this cid"
        self.agreed[cid] = (key, value)
        if len(self.agreed) > VOTES_KEPT:
            self.agreed.popitem(last=False)
        return True, None

    async def on_propose(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("type") == "ping":
            return {"type": "pong", "voter": self.s.name}
        cid = str(req.get("cid"))
        ok, reason = self.vote(cid, req.get("key"), req.get("value"))
        ans: dict[str, Any] = {"cid": cid, "vote": "agree" if ok else "disagree", "voter": self.s.name}
        if reason:
            ans["reason"] = reason
        return ans

    async def _warm_up(self, peer: Any) -> None:
        protocol = DECISION if peer is self.orchestrator else SENTIMENT
        await self.node.request(peer, protocol, {"type": "ping", "cid": "-"}, 2.0)

    # -- deciding ------------------------------------------------------------------

    async def gather_quorum(self, cid: str, key: str, value: int) -> tuple[bool, str]:
        total, need = len(self.peers) + 1, self.s.quorum
        ok, reason = self.vote(cid, key, value)
        agree, against = (1, 0) if ok else (0, 1)
        reasons = [] if ok else [f"{self.s.name}: {reason}"]
        done = trio.Event()

        def settle() -> None:
            if agree >= need or total - against < need:
                done.set()

        async def ask(name: str) -> None:
            nonlocal agree, against
            payload = {"type": "propose", "cid": cid, "key": key, "value": value, "proposer": self.s.name}
            try:
                ans = await self.node.request(self.peers[name], SENTIMENT, payload, self.s.intent_timeout)
                self.peer_ok[name] = True
                if ans.get("vote") == "agree":
                    agree += 1
                else:
                    against += 1
                    reasons.append(f"{name}: {ans.get('reason') or ans.get('error') or 'disagreed'}")
            except PeerTimeout:
                # Not counted against: the intent timeout, the same length, decides
                # and names the reason ("no quorum within ..."), whichever fires first.
                self.peer_ok[name] = False
            except PeerUnavailable as e:
                self.peer_ok[name] = False
                against += 1
                reasons.append(f"{name}: unreachable ({e})")
            self.metrics.peers.set(sum(self.peer_ok.values()))
            settle()

        settle()
        assert self._nursery is not None
        for name in self.peers:
            # In the agent's nursery, so a decision never cancels a stream mid-frame.
            self._nursery.start_soon(ask, name)
        with trio.move_on_after(self.s.intent_timeout):
            await done.wait()
        if agree >= need:
            return True, ""
        if not done.is_set():
            return False, f"no quorum within {self.s.intent_timeout * 1000:.0f} ms ({agree}/{need} agreed)"
        return False, f"quorum impossible ({agree}/{need} agreed): " + "; ".join(reasons)

    async def commit(self, entry: Pending) -> int | None:
        """The orchestrator's seq, or None when it cannot commit now."""
        first_attempt_at = entry.first_attempt_at
        if "forget-first-attempt" in self.bugs:  # counted from this process's start, not the journal's
            first_attempt_at = max(first_attempt_at, self.started_at)
        payload = {
            "type": "decision",
            "cid": entry.cid,
            "key": entry.key,
            "value": entry.value,
            "proposer": entry.proposer,
            "decided_at": entry.decided_at,
            "first_attempt_at": first_attempt_at,
            # How long ago, on this agent's clocks alone: the orchestrator places it on its own clock, so
            # a skewed agent clock cannot hide a replay's age (docs/contract.md, "Exactly once").
            "first_attempt_age_s": self._age(entry, first_attempt_at),
            "attempt": entry.attempt,
        }
        t0 = time.monotonic()
        try:
            ans = await self.node.request(self.orchestrator, DECISION, payload, self.s.commit_timeout)
        except PeerUnavailable as e:
            self.log.warning("orchestrator unreachable", cid=entry.cid, error=str(e))
            self.metrics.nats.set(0)
            return None
        if ans.get("status") == "committed" and isinstance(ans.get("seq"), int):
            self.metrics.commit.observe(time.monotonic() - t0)
            self.metrics.nats.set(1)
            return ans["seq"]
        self.metrics.nats.set(0)
        self.log.warning("commit refused", cid=entry.cid, answer=ans)
        return None

    def _age(self, entry: Pending, first_attempt_at: float) -> float:
        earlier = entry.boot != self.boot or (entry.first_attempt_mono or 0.0) < self.started_mono
        if earlier and self.bugs & {"forget-first-attempt", "trust-journal-clock"}:
            # buggify: an intent decided before this process started, aged by the wall clock alone
            return max(0.0, time.time() - first_attempt_at)
        return first_attempt_age(entry, self.boot)

    def _decided(self, cid: str, key: str, value: int) -> Pending:
        """The entry of an intent decided now, with what ages its replays (netsync.buffer)."""
        now = time.time()
        return Pending(cid, key, value, self.s.name, now, now, 1, time.monotonic(), self.boot)

    async def submit(self, key: str, value: int, cid: str | None) -> Answer:
        cid = cid or new_cid()
        while cid in self.inflight:
            # The first request's answer once it has one. One that failed (an exception: a 500) left
            # none, and this request is answered as if it came first: decided now, by the same rules.
            await self.inflight[cid].wait()
        earlier = self.answers.get(cid)
        if earlier is not None:
            return Answer(*earlier)
        if self.buffer.contains(cid):
            return Answer(202, {"cid": cid, "outcome": "pending-commit"})
        # A slot is reserved before any side effect, so a decision whose commit
        # failed always finds room: 429 only ever happens before anything was sent.
        depth = len(self.buffer) + len(self.unjournaled) + self.reserved
        # buggify cap-off-by-one: `>` admits one more while the buffer already holds the cap
        full = depth > self.s.buffer_cap if "cap-off-by-one" in self.bugs else depth >= self.s.buffer_cap
        if full and "buffer-unbounded" not in self.bugs:
            if "reject-after-commit" in self.bugs:
                return await self._decide_when_full(cid, key, value)
            return self._remember(cid, self._rejected(cid))
        self.reserved += 1
        self.inflight[cid] = trio.Event()
        try:
            return await self._decide_and_commit(cid, key, value)
        finally:
            self.reserved -= 1
            self.inflight.pop(cid).set()

    @staticmethod
    def _rejected(cid: str) -> Answer:
        return Answer(429, {"cid": cid, "outcome": "rejected", "reason": "buffer-full"})

    async def _decide_when_full(self, cid: str, key: str, value: int) -> Answer:
        """buggify reject-after-commit: a quorum and a direct commit first, the 429 only if that fails;
        a commit that landed but whose answer was lost becomes a 429 for an intent in the stream."""
        self.inflight[cid] = trio.Event()
        try:
            decided, reason = await self.gather_quorum(cid, key, value)
            if not decided:
                return self._remember(cid, Answer(409, {"cid": cid, "outcome": "aborted", "reason": reason}))
            seq = await self.commit(self._decided(cid, key, value))
            if seq is None:
                return self._remember(cid, self._rejected(cid))
            return self._remember(cid, Answer(200, {"cid": cid, "outcome": "committed", "stream_seq": seq}))
        finally:
            self.inflight.pop(cid).set()

    async def _decide_and_commit(self, cid: str, key: str, value: int) -> Answer:
        t0 = time.monotonic()
        decided, reason = await self.gather_quorum(cid, key, value)
        quorum_s = time.monotonic() - t0
        quorum_ms = round(quorum_s * 1000, 3)
        self.metrics.quorum.observe(quorum_s)
        if not decided:
            self.log.info("aborted", cid=cid, reason=reason, quorum_ms=quorum_ms)
            return self._remember(cid, Answer(409, {"cid": cid, "outcome": "aborted", "reason": reason}))
        if "keep-every-intent" in self.bugs:
            self.kept.append(f"{cid} {key} {value} decided in {quorum_ms} ms ".ljust(KEPT_RECORD, "."))
        entry = self._decided(cid, key, value)
        if len(self.buffer) == 0:
            seq = await self.commit(entry)
            if seq is not None:
                self.log.info("committed", cid=cid, stream_seq=seq, quorum_ms=quorum_ms)
                body = {"cid": cid, "outcome": "committed", "stream_seq": seq, "quorum_ms": quorum_ms}
                return self._remember(cid, Answer(200, body))
        try:
            if "journal-late" in self.bugs:
                self.unjournaled.append((time.monotonic() + JOURNAL_LATE_S, entry))
            elif "journal-after-answer" in self.bugs:  # buggify: journaled once the 202 is on its way
                self.unjournaled.append((time.monotonic(), entry))
                assert self._nursery is not None
                self._nursery.start_soon(journal_after_answer, self, entry)
            else:
                await trio.to_thread.run_sync(self.buffer.append, entry)
        except BufferFull:  # cannot happen while reservations hold; never drop silently
            self.log.error("buffer full despite reservation", cid=cid)
            return self._remember(cid, self._rejected(cid))
        self._refresh_gauges()
        self._wake.set()
        self.log.info("pending-commit", cid=cid, depth=len(self.buffer), quorum_ms=quorum_ms)
        return self._remember(
            cid, Answer(202, {"cid": cid, "outcome": "pending-commit", "quorum_ms": quorum_ms})
        )

    def _remember(self, cid: str, ans: Answer) -> Answer:
        self.answers.put(cid, ans.status, ans.body)
        self.metrics.intents.labels(ans.body["outcome"]).inc()
        return ans

    def _refresh_gauges(self) -> None:
        self.metrics.buffer_depth.set(len(self.buffer))
        self.metrics.pending.set(len(self.buffer))

    # -- HTTP ---------------------------------------------------------------------------

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        method, path = scope["method"], scope["path"]
        if path == "/intents" and method == "POST":
            try:
                key, value, cid = parse_intent(await read_body(receive, scope), self.bugs)
            except BadRequest as e:
                await respond_json(send, 400, {"error": str(e), "field": e.field})
                return
            except BodyRefused as e:
                await respond_json(send, e.status, {"error": str(e), "field": "body"})
                return
            except ClientGone:
                return
            ans = await self.submit(key, value, cid)
            await respond_json(send, ans.status, ans.body)
        elif path.startswith("/intents/") and method == "GET":
            await respond_json(send, *self.state_of(unquote(path[len("/intents/") :])))
        elif path == "/healthz" and method == "GET":
            body = {
                "name": self.s.name,
                "peer_id": self.node.peer_id,
                "buffer_depth": len(self.buffer),
                "buffer_cap": self.s.buffer_cap,
                "peers_connected": sorted(n for n, p in self.peers.items() if self.node.is_connected(p)),
                "orchestrator_connected": self.node.is_connected(self.orchestrator),
                "clock": time.time(),  # the agent's own wall clock: a clock fault's evidence (docs/clock.md)
            }
            await respond_json(send, 200, body)
        elif path == "/metrics" and method == "GET":
            await respond(send, 200, generate_latest(self.metrics.registry), "text/plain; version=0.0.4")
        else:
            await respond_json(send, 404, {"error": f"no route {method} {path}"})

    def health_sample(self) -> dict[str, Any]:
        return {
            "agent": self.s.name,
            "t": time.time(),
            "peers_reachable": sum(self.peer_ok.values()),
            "buffer_depth": len(self.buffer),
            "nats_reachable": bool(self.metrics.nats._value.get()),
        }

    def state_of(self, cid: str) -> tuple[int, dict[str, Any]]:
        if self.buffer.contains(cid):
            return 200, {"cid": cid, "state": "pending-commit"}
        ans = self.answers.get(cid)
        if ans is None:
            return 404, {"cid": cid, "error": "unknown cid"}
        body = {"cid": cid, "state": ans[1]["outcome"]}
        if "stream_seq" in ans[1]:
            body["stream_seq"] = ans[1]["stream_seq"]
        return 200, body

    # -- running ----------------------------------------------------------------------

    async def run(self) -> None:
        self.node.handle(SENTIMENT, self.on_propose)
        async with self.node.running(), pubsub(self.node.host) as ps, trio.open_nursery() as nursery:
            self._nursery = nursery
            stop = trio.Event()
            nursery.start_soon(self._signals, stop)
            nursery.start_soon(replay_loop, self)
            if "journal-late" in self.bugs:
                nursery.start_soon(journal_late_loop, self)
            nursery.start_soon(publish_health, ps, self.s.telemetry_interval, self.health_sample)
            nursery.start_soon(self.node.keep_connected, list(self.peers.values()), 0.5, 2.0, self._warm_up)
            nursery.start_soon(self.node.keep_connected, [self.orchestrator], 0.5, 2.0, self._warm_up)
            self.log.info(
                "agent up",
                peer_id=self.node.peer_id,
                peers=list(self.peers),
                quorum=self.s.quorum,
                buffered=len(self.buffer),
            )
            if len(self.buffer):
                self._wake.set()
            await serve_trio(self.app, self.s.http_port, self.log, stop.wait)
            nursery.cancel_scope.cancel()

    async def _signals(self, stop: trio.Event) -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                self.log.info("stopping")
                stop.set()
                return


def main() -> int:
    settings = AgentSettings.from_env()
    trio.run(Agent(settings).run)
    return 0
