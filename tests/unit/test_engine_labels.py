"""Run labels and the liveness of their owners (what `solar-chaos clean` relies on)."""

import os
import subprocess

from harness import engine


def test_every_resource_of_a_run_carries_its_run_id_and_owner() -> None:
    labels = engine.run_labels("20261124-120000-abcd")
    assert labels[engine.RUN_LABEL] == "20261124-120000-abcd"
    assert labels[engine.OWNER_LABEL] == engine.owner_token()


def test_this_process_is_alive_and_a_finished_one_is_not() -> None:
    assert engine.owner_alive(engine.owner_token())
    child = subprocess.Popen(["sleep", "0"])
    token = engine.owner_token(child.pid)
    child.wait()
    assert not engine.owner_alive(token)


def test_a_reused_pid_does_not_pass_for_the_old_owner() -> None:
    host, pid, ticks = engine.owner_token().split(":")
    assert not engine.owner_alive(f"{host}:{pid}:{int(ticks) + 1}")


def test_runs_of_other_hosts_are_never_judged_dead() -> None:
    assert engine.owner_alive(f"some-other-host:{os.getpid()}:1")


def test_garbage_owner_is_dead() -> None:
    assert not engine.owner_alive("nonsense")


def test_run_ids_are_unique_and_sortable_by_time() -> None:
    ids = {engine.new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i.split("-")) == 3 for i in ids)


def test_free_port_never_hands_out_a_port_twice() -> None:
    from harness.topology.ports import free_port

    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)
