"""The offline reaper's parsing of Ryuk's protocol (pure logic; the real reaping is
proven in tests/integration/test_cleanup.py)."""

import importlib.util
import io

import pytest

from harness.paths import ROOT


@pytest.fixture(scope="module")
def reaper():
    spec = importlib.util.spec_from_file_location("reaper", ROOT / "docker/offline/reaper/reaper.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_testcontainers_label_line_becomes_a_docker_filter(reaper) -> None:
    line = "label=org.testcontainers.session-id=5f0c\r\n"
    assert reaper.parse_filter_line(line) == {"label": ["org.testcontainers.session-id=5f0c"]}


def test_several_filters_on_one_line_are_all_kept(reaper) -> None:
    line = "label=solar-chaos.run%3Dr1&label=role%3Dnats"
    assert reaper.parse_filter_line(line) == {"label": ["solar-chaos.run=r1", "role=nats"]}


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("500ms", 0.5), ("2m", 120), ("7", 7), ("", 3), ("soon", 3)]
)
def test_durations_follow_ryuk_settings(reaper, text, seconds) -> None:
    assert reaper.parse_duration(text, 3) == seconds


def test_the_reaper_waits_for_the_grace_period_after_the_last_client(reaper, monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(reaper.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(reaper.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    r = reaper.Reaper(connect_timeout=60, reconnect_timeout=10)
    r.connected(+1)
    r.connected(-1)
    assert r.wait_until_abandoned() is True
    assert 10 <= clock[0] <= 10.5


def test_a_reaper_nobody_connects_to_gives_up_without_reaping(reaper, monkeypatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(reaper.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(reaper.time, "sleep", lambda s: clock.__setitem__(0, clock[0] + s))
    r = reaper.Reaper(connect_timeout=60, reconnect_timeout=10)
    assert r.wait_until_abandoned() is False


RUN = "20261206-231200-1a2b3c"


def test_the_reaper_knows_the_harnesss_run_label(reaper) -> None:
    from harness import engine

    assert reaper.RUN_LABEL == engine.RUN_LABEL


@pytest.mark.parametrize(
    "line",
    [
        f"label=solar-chaos.run={RUN}\r\n",
        f"label=solar-chaos.run%3D{RUN}\n",
        f"label=solar-chaos.run={RUN}&label=solar-chaos.node=nats",  # narrower still
        f"label=solar-chaos.node=nats&label=solar-chaos.run={RUN}",
    ],
)
def test_a_filter_by_the_runs_label_is_accepted(reaper, line) -> None:
    assert f"solar-chaos.run={RUN}" in reaper.accept_filter(line, RUN)["label"]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("status=running", "filter by 'status' refused"),
        ("label=org.testcontainers.session-id=5f0c", "without this run's label"),
        ("label=solar-chaos.run=20261206-231200-ffffff", "without this run's label"),  # another run
        (f"label=solar-chaos.run={RUN}0", "without this run's label"),  # this run's id as a prefix
        (f"label=solar-chaos.run={RUN.upper()}", "without this run's label"),
        (f"label=solar-chaos.run={RUN}+", "without this run's label"),  # "+" is a space
        (f"label=solar-chaos.run={RUN};status=running", "without this run's label"),
        ("label=solar-chaos.run", "without this run's label"),  # every run
        ("label=solar-chaos.owner=host:1:2", "without this run's label"),
        (f"label=solar-chaos.run={RUN}&status=running", "filter by 'status' refused"),
        (f"label=solar-chaos.run={RUN}&name=sc-", "filter by 'name' refused"),
        (f"label!=solar-chaos.run={RUN}", "filter by 'label!' refused"),  # everything but the run
        (f"id=abc&label=solar-chaos.run={RUN}", "filter by 'id' refused"),
        ("dangling=true", "filter by 'dangling' refused"),
        ("", "not a filter"),
        ("label", "not a filter"),
        ("\x1b[2J\xff", "not a filter"),
        ("%0AACK%0A=1", r"filter by '\nACK\n' refused"),  # an answer cannot be forged into the ERR line
    ],
)
def test_any_other_filter_is_refused_saying_what_is_allowed(reaper, line, why) -> None:
    with pytest.raises(reaper.Refused) as e:
        reaper.accept_filter(line, RUN)
    assert why in str(e.value)
    assert f"only label=solar-chaos.run={RUN}" in str(e.value)
    assert "\n" not in str(e.value)


def converse(reaper, r, sent: bytes) -> list[bytes]:
    out = io.BytesIO()
    reaper.serve_client(r, io.BytesIO(sent), out)
    return out.getvalue().splitlines()


def test_a_client_sending_status_running_gets_an_error_and_registers_nothing(reaper) -> None:
    r = reaper.Reaper(connect_timeout=60, reconnect_timeout=10, run_id=RUN)
    answers = converse(reaper, r, f"status=running\nlabel=solar-chaos.run={RUN}\n".encode())
    assert len(answers) == 1 and answers[0].startswith(b"ERR filter by 'status' refused")
    assert r.filters == [] and not r.ever_connected  # the connection was dropped at the refusal


def test_the_harnesss_line_is_acked_and_watched(reaper) -> None:
    r = reaper.Reaper(connect_timeout=60, reconnect_timeout=10, run_id=RUN)
    assert converse(reaper, r, f"label=solar-chaos.run={RUN}\r\n\r\n".encode()) == [b"ACK"]
    assert r.filters == [{"label": [f"solar-chaos.run={RUN}"]}]
    assert r.ever_connected and r.connections == 0  # registered, then gone


def test_an_endless_line_is_refused_not_buffered(reaper) -> None:
    r = reaper.Reaper(connect_timeout=60, reconnect_timeout=10, run_id=RUN)
    answers = converse(reaper, r, b"label=" + b"x" * 100_000)
    assert answers == [f"ERR line longer than {reaper.MAX_LINE} bytes".encode()] and r.filters == []


def test_a_stranger_holding_a_connection_open_does_not_keep_the_run_from_being_reaped(reaper) -> None:
    r = reaper.Reaper(connect_timeout=60, reconnect_timeout=10, run_id=RUN)
    assert converse(reaper, r, b"\n\n") == []
    assert not r.ever_connected and r.connections == 0


class FakeThing:
    def __init__(self, name: str, labels: dict[str, str], removed: list[str]) -> None:
        self.id = self.name = name
        self.labels = labels
        self.attrs = {"Labels": labels}
        self._removed = removed

    def remove(self, **_kwargs) -> None:
        self._removed.append(self.name)


class FakeEngine:
    """The engine's listings ignore the filter (as a filter wider than asked for would select), and record
    the filters asked for."""

    def __init__(self, things: dict[str, dict[str, dict[str, str]]]) -> None:
        self.removed: list[str] = []
        self.asked: list[dict] = []
        for kind, named in things.items():
            items = [FakeThing(f"{kind}:{n}", labels, self.removed) for n, labels in named.items()]
            setattr(self, kind, type(kind, (), {"list": staticmethod(self._lister(items))}))

    def _lister(self, items: list[FakeThing]):
        def lister(**kwargs):
            self.asked.append(kwargs["filters"])
            return [t for t in items if t.name not in self.removed]

        return lister


def test_only_what_carries_the_runs_label_is_removed_whatever_the_filter(reaper, monkeypatch) -> None:
    monkeypatch.setenv("HOSTNAME", "containers:reaperself")
    r = reaper.Reaper(connect_timeout=60, reconnect_timeout=10, run_id=RUN)
    r.filters = [{"label": ["solar-chaos.node=nats"]}]  # wider than any it accepts
    labels = {
        "ours": {"solar-chaos.run": RUN},
        "another-run": {"solar-chaos.run": "20261206-231200-ffffff"},
        "no-run": {"solar-chaos.node": "nats"},
        "someone-elses": {},
    }
    engine = FakeEngine(
        {
            "containers": {**labels, "reaperself": {"solar-chaos.run": RUN}},
            "networks": labels,
            "volumes": labels,
        }
    )
    r.reap(engine)
    assert sorted(engine.removed) == ["containers:ours", "networks:ours", "volumes:ours"]
    assert engine.asked and all(f"solar-chaos.run={RUN}" in f["label"] for f in engine.asked)
