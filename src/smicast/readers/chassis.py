"""The machine itself on Linux: DMI identity (read once) and hwmon fan speeds.

Power is left unknown here: the collector fills `total_power_watts` from the GPUs,
as all-smi does. Inlet/outlet temperatures and PSU state need a BMC, which this
reader does not talk to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from smicast.include import Section
from smicast.readers import WALL_CLOCK, Clock, default_hostname
from smicast.schema import ChassisInfo, FanInfo, local_time_text

_DMI_KEYS: Final = (
    ("product_name", "Product Name"),
    ("sys_vendor", "Vendor"),
    ("board_name", "Board"),
    ("product_version", "Version"),
    ("bios_version", "BIOS Version"),
)
# Firmware vendors leave these in fields they never filled in.
_PLACEHOLDERS: Final = frozenset(
    s.casefold()
    for s in (
        "To Be Filled By O.E.M.",
        "To be filled by O.E.M.",
        "Default string",
        "Not Specified",
        "Not Applicable",
        "None",
        "O.E.M.",
        "OEM",
        "System Product Name",
        "System manufacturer",
        "System Version",
        "Type1ProductConfigId",
        "0123456789",
    )
)


def _read_or(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _number(path: Path) -> int:
    """`fan10_input` sorts after `fan9_input`, `hwmon10` after `hwmon9`."""
    return int("".join(ch for ch in path.name if ch.isdigit()) or 0)


def read_dmi(dmi: Path) -> dict[str, str]:
    detail: dict[str, str] = {}
    for file, key in _DMI_KEYS:
        value = _read_or(dmi / file)
        if value and value.casefold() not in _PLACEHOLDERS:
            detail[key] = value
    detail["platform"] = "Linux"
    return detail


@dataclass(frozen=True)
class Fan:
    id: int
    name: str
    input_path: str
    max_rpm: int


def find_fans(sysfs: Path) -> list[Fan]:
    fans: list[Fan] = []
    for hwmon in sorted((sysfs / "class" / "hwmon").glob("hwmon*"), key=_number):
        chip = _read_or(hwmon / "name") or hwmon.name
        for fan_input in sorted(hwmon.glob("fan*_input"), key=_number):
            stem = fan_input.name.removesuffix("_input")
            label = _read_or(hwmon / f"{stem}_label")
            max_rpm = _read_or(hwmon / f"{stem}_max")
            fans.append(
                Fan(
                    id=len(fans),
                    name=label or f"{chip} {stem}",
                    input_path=str(fan_input),
                    max_rpm=int(max_rpm) if max_rpm.isdigit() else 0,
                )
            )
    return fans


class ChassisReader:
    name = "chassis"
    section = Section.CHASSIS

    def __init__(
        self,
        sysfs: Path = Path("/sys"),
        *,
        hostname: str | None = None,
        clock: Clock = WALL_CLOCK,
    ) -> None:
        self._host = hostname or default_hostname()
        self._clock = clock
        self._detail = read_dmi(sysfs / "class" / "dmi" / "id")
        # Fan headers do not come and go while the machine runs: find them once.
        self._fans = find_fans(sysfs)

    def read(self) -> list[ChassisInfo]:
        speeds: list[FanInfo] = []
        for fan in self._fans:
            try:
                fd = os.open(fan.input_path, os.O_RDONLY)
                try:
                    rpm = int(os.read(fd, 64))
                finally:
                    os.close(fd)
            except (OSError, ValueError):  # a header with nothing plugged in can refuse reads
                continue
            speeds.append(
                FanInfo(id=fan.id, name=fan.name, speed_rpm=max(0, rpm), max_rpm=fan.max_rpm)
            )
        return [
            ChassisInfo(
                host_id=self._host,
                hostname=self._host,
                instance=self._host,
                fan_speeds=speeds,
                detail=dict(self._detail),
                time=local_time_text(self._clock()),
            )
        ]
