"""all-smi's AMD `detail` map from amdgpu sysfs, read once per card, and the live PCIe link.

all-smi's AMD reader (libamdgpu_top) writes these keys once per device: `Device Name`,
`PCI Bus`, `ROCm Version`/`lib_name`/`lib_version` (when ROCm is installed),
`Device ID` (`0x74a1`), `Revision ID` (`0x00`), `VBIOS Version`, `Power Cap` and its
`(Min)`/`(Max)` (`750 W`), `Max GPU Link` and `Min/Max DPM Link` (`Gen5 x16`). They are
built here from the same facts in sysfs. Keys whose source is an ioctl with no sysfs
twin (`ASIC Name`, `VBIOS Date`, `Driver Version`, `Max System Link`) are left out.

all-smi also rewrites `Current Link`, `Fan Speed` and `Memory Clock` on every read,
which starts a new `all_smi_gpu_info` series at each change. smicast keeps them out
of `detail`: the fan goes to `fan_speed_rpm`, the link to `pcie_link_generation` /
`pcie_link_width`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from smicast.readers.kernelfs import read_text

_GT_PER_S_GENERATION: Final = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}
# pp_dpm_pcie lines: "0: 2.5GT/s, x1 97Mhz" ... "1: 16.0GT/s, x16 619Mhz *"
_DPM_LINK = re.compile(r"([\d.]+)\s*GT/s,\s*x(\d+)", re.IGNORECASE)


def _text(path: Path) -> str | None:
    try:
        return read_text(str(path)).strip() or None
    except (OSError, ValueError):
        return None


def _int(path: Path, base: int = 10) -> int | None:
    text = _text(path)
    try:
        return int(text, base) if text else None
    except ValueError:
        return None


def link_generation(speed: str | None) -> int | None:
    """'16.0 GT/s PCIe' -> 4."""
    try:
        return _GT_PER_S_GENERATION.get(float((speed or "").split()[0].removesuffix("GT/s")))
    except (IndexError, ValueError):
        return None


def link(device: Path, which: str) -> tuple[int | None, int | None]:
    """(generation, width) of `current_link_*` or `max_link_*`; None where unreadable."""
    width = _int(device / f"{which}_link_width")
    return link_generation(_text(device / f"{which}_link_speed")), width or None


def _link_text(generation: int | None, width: int | None) -> str | None:
    return f"Gen{generation} x{width}" if generation is not None and width is not None else None


def _dpm_links(device: Path) -> tuple[str | None, str | None]:
    """The lowest and highest levels of pp_dpm_pcie, as all-smi's Min/Max DPM Link."""
    levels = [
        _link_text(_GT_PER_S_GENERATION.get(float(speed)), int(width))
        for speed, width in _DPM_LINK.findall(_text(device / "pp_dpm_pcie") or "")
    ]
    known = [level for level in levels if level is not None]
    return (known[0], known[-1]) if known else (None, None)


def _watts(microwatts: int | None) -> str | None:
    return None if microwatts is None else f"{microwatts // 1_000_000} W"


def rocm_version(rocm: Path) -> str | None:
    """The installed ROCm release (`/opt/rocm/.info/version`, e.g. `6.3.1-48`)."""
    return _text(rocm / ".info" / "version")


def static_detail(
    device: Path, hwmon: Path | None, *, name: str, pci_address: str, rocm: str | None
) -> dict[str, str]:
    detail = {"Device Name": name, "PCI Bus": pci_address}
    if rocm is not None:
        detail.update({"ROCm Version": rocm, "lib_name": "ROCm", "lib_version": rocm})
    device_id = _int(device / "device", 16)
    if device_id is not None:
        detail["Device ID"] = f"{device_id:#06x}"
    revision = _int(device / "revision", 16)
    if revision is not None:
        detail["Revision ID"] = f"{revision:#04x}"
    vbios = _text(device / "vbios_version")
    if vbios is not None:
        detail["VBIOS Version"] = vbios
    if hwmon is not None:
        for key, file in (
            ("Power Cap", "power1_cap"),
            ("Power Cap (Min)", "power1_cap_min"),
            ("Power Cap (Max)", "power1_cap_max"),
        ):
            watts = _watts(_int(hwmon / file))
            if watts is not None:
                detail[key] = watts
    optional = (
        ("Max GPU Link", _link_text(*link(device, "max"))),
        *zip(("Min DPM Link", "Max DPM Link"), _dpm_links(device), strict=True),
    )
    detail.update({key: value for key, value in optional if value is not None})
    return detail
