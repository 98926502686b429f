"""What stands in for --privileged when the host engine's bounding set lacks a capability
(harness/topology/engines.py): the capabilities to drop are named from CapBnd."""

from __future__ import annotations

from harness.topology.engines import missing_capabilities


def test_missing_capabilities_names_the_bits_absent_from_the_bounding_set() -> None:
    # This machine's dockerd: every capability up to CHECKPOINT_RESTORE (40) but SYS_RESOURCE (24).
    assert missing_capabilities("CapBnd:\t000001fffeffffff\n") == ["SYS_RESOURCE"]
    assert missing_capabilities("CapPrm:\t0\nCapBnd:\t000001ffffffffff\n") == []
    assert missing_capabilities("CapBnd:\t000001fffefffffe\n") == ["CHOWN", "SYS_RESOURCE"]
