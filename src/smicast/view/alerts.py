"""GPU alerts as all-smi's terminal UI has them: temperature and sustained idleness.

Rules (all-smi `src/ui/alerts.rs` semantics): temperature warns at `temp_warn_c`
(80 °C) and is critical at `temp_crit_c` (90 °C); a level is left only once the
reading drops `hysteresis_c` (2 °C) below where it was entered. `--alert-temp T`
sets the warning to T and raises the critical level to T + 10 when it would
otherwise sit less than 5 °C above. A GPU whose utilization stays at or below
`util_idle_pct` (5 %) for `util_idle_warn_mins` (15) minutes warns; 0 minutes
turns the rule off. Missing readings (temperature 0, utilization -1) never alert.
Each transition (ok -> warn, warn -> crit, crit -> ok...) is kept in a log of the
last 50. State of GPUs that left the frame is dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from smicast.readings import GpuReading
from smicast.schema import GpuInfo

ALERT_LOG_SIZE: Final = 50
_NEVER: Final = float("inf")


class Level(IntEnum):
    OK = 0
    WARN = 1
    CRIT = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class AlertConfig:
    temp_warn_c: float = 80.0
    temp_crit_c: float = 90.0
    hysteresis_c: float = 2.0
    util_idle_pct: float = 5.0
    util_idle_warn_mins: float = 15.0

    @classmethod
    def from_options(cls, alert_temp: float | None, util_low_mins: float | None) -> AlertConfig:
        """The defaults, changed as all-smi's `--alert-temp` / `--alert-util-low-mins` change them."""
        base = cls()
        warn, crit = base.temp_warn_c, base.temp_crit_c
        if alert_temp is not None:
            warn = alert_temp
            if crit < warn + 5:
                crit = warn + 10
        mins = base.util_idle_warn_mins if util_low_mins is None else util_low_mins
        return cls(temp_warn_c=warn, temp_crit_c=crit, util_idle_warn_mins=mins)


@dataclass(frozen=True)
class Transition:
    at_s: float  # epoch seconds of the frame that caused it
    host: str
    gpu: str  # the GPU's display label (index and name)
    rule: str  # "temperature" | "idle_utilization"
    before: Level
    after: Level
    value: float
    threshold: float

    def message(self) -> str:
        unit = " °C" if self.rule == "temperature" else " %"
        limit = (
            f"{self.threshold:g} min idle"
            if self.rule == "idle_utilization"
            else f"{self.threshold:g}{unit}"
        )
        return (
            f"{self.gpu} {self.rule.replace('_', ' ')} {self.before.label} -> {self.after.label}"
            f" ({self.value:g}{unit}, limit {limit})"
        )


@dataclass
class _State:
    temp: Level = Level.OK
    idle: Level = Level.OK
    idle_since_s: float | None = None


@dataclass
class Alerter:
    """Per-GPU state machines; `evaluate()` once per frame returns the transitions."""

    config: AlertConfig = field(default_factory=AlertConfig)
    log: deque[Transition] = field(default_factory=lambda: deque(maxlen=ALERT_LOG_SIZE))
    _states: dict[str, _State] = field(default_factory=dict)

    def level(self, gpu_key: str) -> Level:
        state = self._states.get(gpu_key)
        return max(state.temp, state.idle) if state else Level.OK

    def active(self) -> dict[str, Level]:
        return {k: lv for k in self._states if (lv := self.level(k)) is not Level.OK}

    def reset(self) -> None:
        self._states.clear()

    def evaluate(
        self, host: str, gpus: Iterable[tuple[str, str, GpuInfo | GpuReading]], now_s: float
    ) -> list[Transition]:
        """`gpus`: (state key, display label, reading) for every GPU in the frame."""
        out: list[Transition] = []
        seen: set[str] = set()
        states = self._states
        cfg = self.config
        # A GPU at OK and clear of every threshold changes nothing: most GPUs, most frames.
        quiet_below = min((t for t in (cfg.temp_warn_c, cfg.temp_crit_c) if t > 0), default=_NEVER)
        idle_rule = cfg.util_idle_warn_mins > 0
        busy_above = max(cfg.util_idle_pct, 0.0)  # and a reading, not the -1 sentinel
        for key, label, gpu in gpus:
            seen.add(key)
            state = states.get(key)
            if state is None:
                state = states[key] = _State()
            if state.temp is not Level.OK or gpu.temperature >= quiet_below:
                self._temperature(state, host, label, gpu, now_s, out)
            util = gpu.utilization
            if state.idle is Level.OK and idle_rule and util is not None and util > busy_above:
                state.idle_since_s = None  # what `_idle` does for a busy GPU at OK
            else:
                self._idle(state, host, label, gpu, now_s, out)
        if len(states) > len(seen):
            for gone in states.keys() - seen:
                del states[gone]
        if out:
            self.log.extend(out)
        return out

    def _temperature(
        self,
        state: _State,
        host: str,
        label: str,
        gpu: GpuInfo | GpuReading,
        now_s: float,
        out: list[Transition],
    ) -> None:
        if gpu.temperature <= 0:
            return
        temp = float(gpu.temperature)
        cfg = self.config
        warn_on, crit_on = cfg.temp_warn_c, cfg.temp_crit_c
        warn_off, crit_off = warn_on - cfg.hysteresis_c, crit_on - cfg.hysteresis_c
        current = state.temp
        if current is Level.CRIT:
            if temp > crit_off:
                target = Level.CRIT
            else:
                target = Level.OK if warn_on <= 0 or temp <= warn_off else Level.WARN
        elif current is Level.WARN:
            if crit_on > 0 and temp >= crit_on:
                target = Level.CRIT
            else:
                target = Level.OK if temp <= warn_off else Level.WARN
        elif crit_on > 0 and temp >= crit_on:
            target = Level.CRIT
        elif warn_on > 0 and temp >= warn_on:
            target = Level.WARN
        else:
            target = Level.OK
        if target is not current:
            state.temp = target
            threshold = crit_on if target is Level.CRIT else warn_on
            out.append(
                Transition(now_s, host, label, "temperature", current, target, temp, threshold)
            )

    def _idle(
        self,
        state: _State,
        host: str,
        label: str,
        gpu: GpuInfo | GpuReading,
        now_s: float,
        out: list[Transition],
    ) -> None:
        cfg = self.config
        util = gpu.utilization
        if cfg.util_idle_warn_mins <= 0 or util is None or util < 0:
            return
        current = state.idle
        if util <= cfg.util_idle_pct:
            if state.idle_since_s is None or state.idle_since_s > now_s:  # a seek back in time
                state.idle_since_s = now_s
            idle_s = now_s - state.idle_since_s
            target = Level.WARN if idle_s >= cfg.util_idle_warn_mins * 60 else Level.OK
        else:
            state.idle_since_s = None
            target = Level.OK
        if target is not current:
            state.idle = target
            out.append(
                Transition(
                    now_s,
                    host,
                    label,
                    "idle_utilization",
                    current,
                    target,
                    util,
                    cfg.util_idle_warn_mins,
                )
            )
