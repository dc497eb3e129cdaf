"""The view model without a terminal: histories, host figures, alerts, hostile text."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from rich.console import Console

from smicast.schema import ChassisInfo, CoreUtilization, GpuInfo, ReaderError
from smicast.view.alerts import AlertConfig, Alerter, Level, Transition, _State
from smicast.view.model import HISTORY_SAMPLES, Ring, SourceEvent, ViewModel
from smicast.view.text import clean, inert
from tests.fakes import make_cpu, make_gpu, make_snapshot
from tests.view_support import T0, stamp


def frame(offset_s: float, **overrides: object) -> SourceEvent:
    snap = make_snapshot(timestamp=stamp(offset_s), **overrides)
    return SourceEvent("mockhost", snap)


def test_hosts_gpus_and_history_rings() -> None:
    model = ViewModel()
    for i in range(3):
        gpus = [make_gpu("A100", utilization=10.0 * i), make_gpu("H100", utilization=-1.0)]
        model.apply(frame(i, gpus=gpus), now_s=T0 + i)
    host = model.hosts["mockhost"]
    assert host.frames == 3 and host.frame_epoch_s == T0 + 2
    a100, h100 = host.gpu_list()
    assert a100.util.last(10) == [0.0, 10.0, 20.0]
    assert h100.util.last(10) == [None, None, None]  # -1 is all-smi's "unavailable"
    assert a100.memory.latest() == pytest.approx(12.5)
    assert host.cpu.last(2) == [25.0, 25.0]
    assert host.age_s(T0 + 5) == 3


def test_ring_keeps_more_than_five_minutes_at_the_fastest_interval() -> None:
    ring = Ring()
    for i in range(HISTORY_SAMPLES + 10):
        ring.push(float(i))
    assert len(ring) == HISTORY_SAMPLES >= 300 / 0.5
    assert ring.last(2) == [HISTORY_SAMPLES + 8.0, HISTORY_SAMPLES + 9.0]


def test_a_missing_gpu_section_keeps_the_gpus_and_errors_are_kept() -> None:
    model = ViewModel()
    model.apply(frame(0), now_s=T0)
    err = ReaderError(kind="timeout", message="reader exceeded timeout of 5000 ms", section="gpu")
    snap = make_snapshot(timestamp=stamp(1), errors=[err])
    snap = snap.__class__(**{**{f: getattr(snap, f) for f in snap.__struct_fields__}, "gpus": []})
    model.apply(SourceEvent("mockhost", snap), now_s=T0 + 1)
    assert model.hosts["mockhost"].errors == [err]


def test_source_errors_and_many_hosts() -> None:
    model = ViewModel(max_hosts=2)
    model.apply(SourceEvent("http://a:9090/events", error="connection refused"), now_s=0)
    model.apply(frame(0), now_s=1)
    assert model.hosts["http://a:9090/events"].source_error == "connection refused"
    assert [h.key for h in model] == ["http://a:9090/events", "mockhost"]
    with pytest.raises(OverflowError):
        model.apply(SourceEvent("third", error="x"), now_s=2)


def test_chassis_power_cpu_and_cores() -> None:
    chassis = ChassisInfo(
        host_id="h", hostname="h", instance="h", time="t", total_power_watts=1234.5
    )
    cores = [CoreUtilization(core_id=i, utilization=float(i)) for i in range(4)]
    model = ViewModel()
    model.apply(frame(0, chassis=[chassis], cpus=[make_cpu(per_core_utilization=cores)]), now_s=0)
    host = model.hosts["mockhost"]
    assert host.chassis_power_w() == 1234.5
    assert host.memory_utilization() == 25.0


def test_temperature_alert_with_hysteresis_as_all_smi() -> None:
    model = ViewModel(AlertConfig.from_options(alert_temp=70, util_low_mins=0))
    assert model.alert_config.temp_warn_c == 70 and model.alert_config.temp_crit_c == 90
    seen = []
    for i, temp in enumerate([65, 70, 69, 68, 91, 89, 88, 60]):
        seen += model.apply(frame(i, gpus=[make_gpu("A100", temperature=temp)]), now_s=i)
    steps = [(t.before, t.after) for t in seen]
    assert steps == [
        (Level.OK, Level.WARN),  # 70 >= warn
        (Level.WARN, Level.OK),  # 68 <= 70 - 2
        (Level.OK, Level.CRIT),  # 91 >= crit
        (Level.CRIT, Level.WARN),  # 88 <= 90 - 2, still above warn
        (Level.WARN, Level.OK),
    ]
    assert "temperature ok -> warn" in seen[0].message()
    # --alert-temp 86: the critical level moves to 96 since 90 < 86 + 5
    assert AlertConfig.from_options(86, None).temp_crit_c == 96


def test_idle_alert_after_the_configured_minutes_and_no_alert_on_missing_data() -> None:
    model = ViewModel(AlertConfig.from_options(alert_temp=None, util_low_mins=2))
    seen = []
    for minute in range(4):
        gpus = [make_gpu("A100", utilization=3.0), make_gpu("H100", utilization=-1.0)]
        seen += model.apply(frame(minute * 60, gpus=gpus), now_s=0)
    assert [(t.gpu, t.after, t.at_s - T0) for t in seen] == [("GPU0 A100", Level.WARN, 120)]
    assert model.hosts["mockhost"].alert_levels() == {"GPU-A100-UUID": Level.WARN}
    seen = model.apply(frame(300, gpus=[make_gpu("A100", utilization=50.0)]), now_s=0)
    assert [t.after for t in seen] == [Level.OK]
    assert len(model.hosts["mockhost"].alerts.log) == 2


def test_a_rewound_event_clears_history() -> None:
    model = ViewModel()
    model.apply(frame(0), now_s=0)
    model.apply(SourceEvent("mockhost", make_snapshot(timestamp=stamp(0)), rewound=True), now_s=1)
    assert model.hosts["mockhost"].gpu_list()[0].util.last(5) == [80.0]


HOSTILE = [
    "\x1b]52;c;ZWNobyBwd25lZA==\x07",  # OSC 52 clipboard write
    "\x1b]0;owned title\x07",  # window title
    "\x1b[2J\x1b[H",  # clear screen, cursor home
    "\x9b31m",  # C1 CSI
    "[bold red]alarm[/]",
    "[@click=app.quit]click me[/]",
    "evil\u202ecod.exe",  # right-to-left override
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_strings_render_inert(name: str) -> None:
    console = Console(width=200, color_system="truecolor", force_terminal=True)
    with console.capture() as cap:
        console.print(inert(name))
    out = cap.get()
    # No control sequence of the string's own reaches the terminal: only Rich's SGR codes.
    assert "\x1b]" not in out and "\x9b" not in out and "\x07" not in out
    assert "\x1b[2J" not in out and "\u202e" not in out
    assert clean(name) in out
    if name.startswith("["):
        assert name in out  # the markup is shown, not applied


def test_clean_shows_controls_as_notation_and_bounds_length() -> None:
    assert clean("a\x1bb\x00c\x7f") == "a^[b^@c^?"
    assert clean("x" * 1000, limit=10) == "x" * 10 + "…"
    assert clean("plain") == "plain"


def test_ring_peaks_match_a_full_recount() -> None:
    import random

    rng = random.Random(3)
    ring = Ring(size=50)
    for step in range(400):
        ring.push(None if rng.random() < 0.1 else rng.uniform(0, 100))
        for size in (1, 3, 7):
            got = ring.peaks(size, 6)
            values = list(ring.last(50))
            first = ring.pushes - len(values)
            expect: dict[int, list[float]] = {}
            for i, v in enumerate(values, start=first):
                expect.setdefault(i // size, [])
                if v is not None:
                    expect[i // size].append(v)
            recount = [max(b) if b else None for _, b in sorted(expect.items())]
            if first % size:  # the oldest bucket is cut by the ring: only whole ones count
                recount = recount[1:]
            assert got == recount[-6:], (step, size)


class _EveryRuleAlerter(Alerter):
    """The rules applied to every GPU on every frame, with no shortcut for quiet GPUs."""

    def evaluate(
        self, host: str, gpus: Iterable[tuple[str, str, GpuInfo]], now_s: float
    ) -> list[Transition]:
        out: list[Transition] = []
        seen = set()
        for key, label, gpu in gpus:
            seen.add(key)
            state = self._states.setdefault(key, _State())
            self._temperature(state, host, label, gpu, now_s, out)
            self._idle(state, host, label, gpu, now_s, out)
        for gone in self._states.keys() - seen:
            del self._states[gone]
        self.log.extend(out)
        return out


@pytest.mark.parametrize(
    "config",
    [
        AlertConfig(util_idle_warn_mins=0.05),
        AlertConfig(temp_warn_c=0, temp_crit_c=85, util_idle_warn_mins=0),
        AlertConfig(temp_warn_c=0, temp_crit_c=0, util_idle_pct=0, util_idle_warn_mins=0.02),
    ],
)
def test_quiet_gpus_skip_no_transition_the_full_rules_make(config: AlertConfig) -> None:
    rng = random.Random(7)
    fast, full = Alerter(config), _EveryRuleAlerter(config)
    temps = [0, -3, 40, 78, 79, 80, 84, 88, 89, 90, 95]
    utils: list[float | None] = [None, -1.0, 0.0, 3.0, 5.0, 5.5, 50.0, float("nan")]
    for step in range(600):
        gpus = [
            (
                f"g{i}",
                f"GPU{i}",
                make_gpu(temperature=rng.choice(temps), utilization=rng.choice(utils)),
            )
            for i in range(rng.randint(1, 4))
        ]
        assert fast.evaluate("h", gpus, step * 1.0) == full.evaluate("h", gpus, step * 1.0)
        assert fast.active() == full.active()
    assert len(full.log) > 10
