"""The harness computes peer ids exactly as a libp2p agent derives them from its seed."""

import pytest

from harness.topology.identity import b58encode, peer_id_for_seed
from netsync.p2p import peer_id_for_seed as libp2p_peer_id


@pytest.mark.parametrize("seed", ["agent-1", "agent-7", "orchestrator", "", "ünïcode"])
def test_peer_ids_match_libp2p(seed: str) -> None:
    assert peer_id_for_seed(seed) == libp2p_peer_id(seed)


def test_base58_keeps_leading_zero_bytes() -> None:
    assert b58encode(b"\0\0\x01") == "112"
