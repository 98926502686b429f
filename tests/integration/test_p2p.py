"""netsync's libp2p layer between two real py-libp2p hosts on loopback: many requests
share one long-lived stream, answers are matched by request id, and a slow, failing
or vanished peer affects only what it should (docs/contract.md, "Streams")."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from libp2p.peer.peerinfo import PeerInfo

from netsync.p2p import SENTIMENT, Node, PeerTimeout, PeerUnavailable, peer_info
from netsync.wire import FrameReader, encode


async def slow_echo(req: dict[str, Any]) -> dict[str, Any]:
    if req.get("fail"):
        raise RuntimeError("handler broke")
    await trio.sleep(req.get("sleep", 0))
    return {"cid": req["cid"], "echo": req["n"]}


def address(node: Node) -> PeerInfo:
    addr = next(a for a in node.host.get_addrs() if "/ip4/127.0.0.1/" in str(a))
    return peer_info(str(addr))


def run_pair(body: Any) -> None:
    """Run `body(client, server_info, server)` with a server answering slow_echo."""

    async def main() -> None:
        server = Node("p2p-test-server", "/ip4/127.0.0.1/tcp/0")
        client = Node("p2p-test-client", "/ip4/127.0.0.1/tcp/0")
        server.handle(SENTIMENT, slow_echo)
        with trio.fail_after(30):
            async with server.running(), client.running():
                await body(client, address(server), server)

    trio.run(main)


def test_concurrent_requests_share_a_stream_and_match_their_answers() -> None:
    async def body(client: Node, server: PeerInfo, _: Node) -> None:
        answers: dict[int, dict[str, Any]] = {}
        finished: list[int] = []

        async def ask(n: int, sleep: float) -> None:
            payload = {"type": "propose", "cid": f"c{n}", "n": n, "sleep": sleep}
            answers[n] = await client.request(server, SENTIMENT, payload, 5.0)
            finished.append(n)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, 0, 0.5)  # a slow request first ...
            await trio.sleep(0.05)
            for n in range(1, 60):  # ... must not hold back the fast ones behind it
                nursery.start_soon(ask, n, 0.001 * (n % 7))
        assert {n: a["echo"] for n, a in answers.items()} == {n: n for n in range(60)}
        assert all(a["cid"] == f"c{n}" and "rid" not in a for n, a in answers.items())
        assert finished[-1] == 0, "the slow answer came last, the others did not wait for it"
        assert len(client._channels) == 1, "one stream for one peer and protocol"

    run_pair(body)


def test_a_late_answer_times_out_and_the_stream_stays_usable() -> None:
    async def body(client: Node, server: PeerInfo, _: Node) -> None:
        assert await client.request(server, SENTIMENT, {"cid": "first", "n": 0}, 5.0) == {
            "cid": "first",
            "echo": 0,
        }
        channel = next(iter(client._channels.values()))
        with pytest.raises(PeerTimeout):
            await client.request(server, SENTIMENT, {"cid": "late", "n": 1, "sleep": 0.3}, 0.05)
        answer = await client.request(server, SENTIMENT, {"cid": "next", "n": 2}, 2.0)
        assert answer == {"cid": "next", "echo": 2}
        await trio.sleep(0.4)  # the late answer arrives, finds no caller, and is ignored
        assert await client.request(server, SENTIMENT, {"cid": "after", "n": 3}, 2.0) == {
            "cid": "after",
            "echo": 3,
        }
        assert next(iter(client._channels.values())) is channel and channel.failure is None

    run_pair(body)


def test_a_failing_handler_answers_an_error_and_spares_the_others() -> None:
    async def body(client: Node, server: PeerInfo, _: Node) -> None:
        answers: dict[str, dict[str, Any]] = {}

        async def ask(cid: str, fail: bool) -> None:
            payload = {"cid": cid, "n": 0, "fail": fail, "sleep": 0.05}
            answers[cid] = await client.request(server, SENTIMENT, payload, 2.0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "bad", True)
            nursery.start_soon(ask, "good", False)
        assert answers["bad"] == {"cid": "bad", "error": "RuntimeError: handler broke"}
        assert answers["good"] == {"cid": "good", "echo": 0}

    run_pair(body)


def test_a_one_request_stream_without_rid_is_still_answered() -> None:
    """The simplest caller of the contract: open a stream, send one frame, close, read."""

    async def body(client: Node, server: PeerInfo, _: Node) -> None:
        await client.host.connect(server)
        stream = await client.host.new_stream(server.peer_id, [SENTIMENT])
        await stream.write(encode({"cid": "one-shot", "n": 7}))
        await stream.close()
        reader = FrameReader(stream)
        assert await reader.next() == {"cid": "one-shot", "echo": 7}
        assert await reader.next() is None

    run_pair(body)


def test_requests_in_flight_fail_at_once_when_the_peer_goes() -> None:
    async def main() -> None:
        client = Node("p2p-test-client", "/ip4/127.0.0.1/tcp/0")
        server = Node("p2p-test-server", "/ip4/127.0.0.1/tcp/0")
        server.handle(SENTIMENT, slow_echo)
        with trio.fail_after(30):
            async with client.running():
                errors: list[PeerUnavailable] = []
                async with trio.open_nursery() as outer:
                    stop = trio.Event()

                    async def serve() -> None:
                        async with server.running():
                            await stop.wait()

                    outer.start_soon(serve)
                    await trio.sleep(0.3)
                    target = address(server)
                    await client.request(target, SENTIMENT, {"cid": "warm", "n": 0}, 2.0)

                    async def ask(n: int) -> None:
                        try:
                            await client.request(target, SENTIMENT, {"cid": f"c{n}", "n": n, "sleep": 5}, 10)
                        except PeerUnavailable as e:
                            errors.append(e)

                    started = trio.current_time()
                    async with trio.open_nursery() as asks:
                        for n in range(5):
                            asks.start_soon(ask, n)
                        await trio.sleep(0.2)
                        stop.set()  # the server host shuts down with 5 requests unanswered
                    waited = trio.current_time() - started
                assert len(errors) == 5
                assert not any(isinstance(e, PeerTimeout) for e in errors)
                assert not any("ExceptionGroup" in str(e) for e in errors), errors[0]
                assert waited < 4, f"callers waited {waited:.1f} s for a peer that was gone"

    trio.run(main)
