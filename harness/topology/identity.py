"""libp2p identities as the agent contract defines them (docs/contract.md): the
Ed25519 key whose 32-byte seed is sha256(NETSYNC_IDENTITY_SEED). The harness needs
each node's peer id before starting it, to hand peers their proxy multiaddrs."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def peer_id_for_seed(seed: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    # libp2p PublicKey protobuf {Type: Ed25519 (1), Data: 32 bytes}; short keys are
    # not hashed: the peer id is the identity multihash (0x00, length) of it.
    pb = b"\x08\x01\x12\x20" + raw
    return b58encode(b"\x00" + bytes([len(pb)]) + pb)
