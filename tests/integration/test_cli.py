"""`solar-chaos doctor` and `images` against the real engine."""

import pytest

from harness.cli import main as cli
from harness.images import DEFAULT_ROLES, Images

pytestmark = pytest.mark.docker


def test_doctor_says_ready_when_engine_and_images_are_there(images, capsys) -> None:
    assert cli(["doctor", "--mode", images.mode.value]) == 0
    out = capsys.readouterr().out
    assert "engine     ok       Docker " in out
    for role in DEFAULT_ROLES:  # another implementation's image is built at its first use
        assert f"{role:<10} ok" in out
    assert out.rstrip().endswith("ready")


def test_a_second_images_run_builds_nothing(images) -> None:
    said: list[str] = []
    again = Images(images.mode, log=said.append)
    refs = again.ensure()
    assert refs == {role: images.ref(role) for role in DEFAULT_ROLES}
    assert not [m for m in said if "building" in m or "pulling" in m], said


def test_doctor_names_the_fix_for_a_missing_image(images, capsys, monkeypatch) -> None:
    real_ref = Images.ref

    def ref(self, role):
        return "solar-chaos/nats:not-built" if role == "nats" else real_ref(self, role)

    monkeypatch.setattr(Images, "ref", ref)
    assert cli(["doctor", "--mode", images.mode.value]) == 1
    out = capsys.readouterr().out
    assert "nats       MISSING  solar-chaos/nats:not-built" in out
    assert f"solar-chaos images --mode {images.mode.value}" in out
