"""`--fault SPEC`: the misbehaviour of real hardware, injected into the simulated accelerators.

SPEC is `NAME[:ARG][@START][+DURATION]`. START (default 0) counts from the
moment the readers are built; DURATION (default: until exit) is how long the
fault lasts. Both take `parse_duration`'s forms (`500ms` is `0.5`, `30s`, `5m`, `1h`).

    init-hang            set-up (nvmlInit) blocks; from START it blocks again, a driver reload
    read-hang            every read blocks until the fault clears
    gpu-lost[:INDEX]     device INDEX (default 0) answers NVML's "GPU is lost"; the others report
    unsupported:FIELD    the sensor behind FIELD is not supported: the field reads as unknown
    churn                P-states flip, fans step, the PCIe link trains down, on every read
    proc-hidden          the GPU processes' /proc entries cannot be read (another PID namespace)
    exception            the reader raises an unexpected exception: a bug, not a driver error
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from smicast.record.format import parse_duration

SCENARIOS: Final = (
    "init-hang",
    "read-hang",
    "gpu-lost",
    "unsupported",
    "churn",
    "proc-hidden",
    "exception",
)
UNSUPPORTED_FIELDS: Final = (
    "utilization",
    "temperature",
    "power",
    "frequency",
    "fan",
    "performance-state",
    "pcie",
)
MAX_FAULTS: Final = 32
MAX_FAULT_TIME_S: Final = 30 * 86_400.0  # START and DURATION: at most 30 days
MAX_DEVICE_INDEX: Final = 255


@dataclass(frozen=True)
class FaultSpec:
    scenario: str
    start_s: float = 0.0
    duration_s: float | None = None  # None: until exit
    device: int | None = None  # gpu-lost
    field: str | None = None  # unsupported

    @property
    def end_s(self) -> float:
        return math.inf if self.duration_s is None else self.start_s + self.duration_s

    def active(self, elapsed_s: float) -> bool:
        return self.start_s <= elapsed_s < self.end_s


def _time(text: str, what: str, spec: str) -> float:
    raw = text.strip().lower()
    scale = 1.0
    if raw.endswith("ms"):
        raw, scale = raw[:-2], 0.001
    try:
        seconds = parse_duration(raw) * scale if raw else math.nan
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_FAULT_TIME_S:
        raise ValueError(
            f"invalid --fault {spec!r}: {what} {text!r} must be a duration "
            f"(500ms, 10s, 5m, 1h) of at most 30 days"
        )
    return seconds


def parse_fault(text: str) -> FaultSpec:
    """One `--fault` value; raises ValueError with a one-line message for the user."""
    spec = text.strip()
    head, plus, duration_text = spec.partition("+")
    head, at, start_text = head.partition("@")
    name, colon, arg = head.strip().lower().partition(":")
    if name not in SCENARIOS:
        raise ValueError(
            f"invalid --fault {text!r}: expected NAME[:ARG][@START][+DURATION] with NAME one of "
            f"{', '.join(SCENARIOS)}"
        )
    start_s = _time(start_text, "START", text) if at else 0.0
    duration_s = _time(duration_text, "DURATION", text) if plus else None
    if duration_s is not None and duration_s <= 0:
        raise ValueError(f"invalid --fault {text!r}: DURATION must be more than 0")
    device: int | None = None
    field: str | None = None
    if name == "gpu-lost":
        if colon and not (arg.isascii() and arg.isdigit() and int(arg) <= MAX_DEVICE_INDEX):
            raise ValueError(
                f"invalid --fault {text!r}: gpu-lost takes a device index 0..{MAX_DEVICE_INDEX}"
            )
        device = int(arg) if colon else 0
    elif name == "unsupported":
        if arg not in UNSUPPORTED_FIELDS:
            raise ValueError(
                f"invalid --fault {text!r}: unsupported needs a FIELD, one of "
                f"{', '.join(UNSUPPORTED_FIELDS)}"
            )
        field = arg
    elif colon:
        raise ValueError(f"invalid --fault {text!r}: {name} takes no argument")
    return FaultSpec(name, start_s, duration_s, device=device, field=field)


def check_faults(faults: list[FaultSpec], device_count: int | None) -> None:
    """What one SPEC cannot see on its own: a simulator to inject into, device indexes, the count."""
    if not faults:
        return
    if device_count is None:
        raise ValueError("--fault needs --simulate: faults are injected into simulated devices")
    if len(faults) > MAX_FAULTS:
        raise ValueError(f"too many --fault options ({len(faults)}): at most {MAX_FAULTS}")
    for fault in faults:
        if fault.device is not None and fault.device >= device_count:
            raise ValueError(
                f"invalid --fault gpu-lost:{fault.device}: --simulate has devices "
                f"0..{device_count - 1}"
            )
