"""AMD GPUs through the amdgpu driver's sysfs files, and their processes through DRM fdinfo.

Every value is one small file under `/sys/class/drm/cardN/device`; a file that
is missing or unreadable makes that field unknown (all-smi's sentinels), never
the read fail. Identity, sizes and the `detail` map (readers.amd_detail) are read
once per card; live readings go to typed fields only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from msgspec import UNSET

from smicast.include import Section
from smicast.readers import WALL_CLOCK, Clock, GpuProcess, default_hostname
from smicast.readers.amd_detail import link, rocm_version, static_detail
from smicast.schema import GPU_METRIC_UNAVAILABLE, MAX_GPU_FAN_RPM, GpuInfo, local_time_text

AMD_VENDOR_ID: Final = "0x1002"
MAX_DEVICES: Final = 256
# Scanning /proc costs one readlink per open file of every process (tens of
# thousands on a busy host); past this many the scan stops rather than stall a read.
MAX_FDS_SCANNED: Final = 200_000
# Engines whose busy time counts as a process's GPU use.
_BUSY_ENGINES: Final = ("drm-engine-gfx", "drm-engine-compute")

_CARD = re.compile(r"card(\d+)")
_PCI_ADDRESS = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
_CURRENT_LEVEL = re.compile(r"^\s*\S+:\s*(\d+)\s*mhz\s*\*", re.IGNORECASE | re.MULTILINE)
_SIZE_UNITS: Final = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
# amdgpu's hwmon names its sensors in tempN_label; the GPU temperature is the first of
# these that the card has (MI300-class GPUs have no edge sensor).
_TEMPERATURE_LABELS: Final = ("edge", "junction", "mem")
_TEMP_LABEL = re.compile(r"temp(\d+)_label")


@dataclass(frozen=True, kw_only=True)
class AmdCard:
    index: int
    device: Path
    hwmon: Path | None
    temperature_input: Path | None
    pci_address: str
    name: str
    uuid: str
    total_memory: int
    detail: dict[str, str]


class AmdReader:
    name = "amd"
    section = Section.GPU

    def __init__(
        self,
        sysfs: Path = Path("/sys"),
        procfs: Path = Path("/proc"),
        *,
        hostname: str | None = None,
        clock: Clock = WALL_CLOCK,
        rocm: Path = Path("/opt/rocm"),
    ) -> None:
        self._procfs = procfs
        self._hostname = hostname or default_hostname()
        self._clock = clock
        self.cards = find_cards(sysfs, rocm_version(rocm))
        self._lock = threading.Lock()
        # (pid, pci address, client id) -> engine busy ns at the previous process read
        self._busy_ns: dict[tuple[int, str, str], int] = {}
        self._busy_at: float | None = None

    @classmethod
    def probe(cls, *, sysfs: Path, procfs: Path, hostname: str, clock: Clock) -> AmdReader | None:
        reader = cls(sysfs, procfs, hostname=hostname, clock=clock)
        return reader if reader.cards else None

    def read(self) -> list[GpuInfo]:
        stamp = local_time_text(self._clock())
        return [self._read_card(card, stamp) for card in self.cards]

    def _read_card(self, card: AmdCard, stamp: str) -> GpuInfo:
        device, hwmon = card.device, card.hwmon
        busy = _read_int(device / "gpu_busy_percent")
        sensor = card.temperature_input
        temperature = _read_int(sensor) if sensor else None
        power_uw = None
        if hwmon is not None:
            # Older kernels average; newer ones (and some APUs) expose only the input.
            power_uw = _read_int(hwmon / "power1_average") or _read_int(hwmon / "power1_input")
        fan_rpm = _read_int(hwmon / "fan1_input") if hwmon else None
        if fan_rpm is not None:
            fan_rpm = min(fan_rpm, MAX_GPU_FAN_RPM)
        link_generation, link_width = link(device, "current")  # trains down at idle
        return GpuInfo(
            uuid=card.uuid,
            time=stamp,
            name=card.name,
            device_type="GPU",
            host_id=self._hostname,
            hostname=self._hostname,
            instance=self._hostname,
            utilization=float(busy) if busy is not None else GPU_METRIC_UNAVAILABLE,
            ane_utilization=0.0,
            temperature=round(temperature / 1000) if temperature else 0,
            used_memory=_read_int(device / "mem_info_vram_used") or 0,
            total_memory=_read_int(device / "mem_info_vram_total") or card.total_memory,
            frequency=current_level_mhz(device / "pp_dpm_sclk") or 0,
            power_consumption=power_uw / 1e6 if power_uw is not None else GPU_METRIC_UNAVAILABLE,
            fan_speed_rpm=fan_rpm,
            pcie_link_generation=UNSET if link_generation is None else link_generation,
            pcie_link_width=UNSET if link_width is None else link_width,
            detail=dict(card.detail),
        )

    def read_processes(self) -> list[GpuProcess]:
        """VRAM (and engine busy share) per process and card, from `/proc/*/fdinfo`."""
        cards = {card.pci_address: card for card in self.cards}
        vram: dict[tuple[int, str], int] = {}
        busy: dict[tuple[int, str, str], int] = {}
        for pid, fd, fields in _amdgpu_fdinfos(self._procfs):
            address = fields.get("drm-pdev", "")
            if address not in cards:
                continue
            # A client (one open of the device) shows in every fd that shares it:
            # dup'd or inherited fds must be counted once. Kernels without
            # drm-client-id: each fd is its own client.
            client = (pid, address, fields.get("drm-client-id") or f"fd{fd}")
            if client in busy:
                continue
            busy[client] = sum(_nanoseconds(fields.get(engine)) for engine in _BUSY_ENGINES)
            used = fields.get("drm-memory-vram") or fields.get("drm-resident-vram") or "0"
            vram[(pid, address)] = vram.get((pid, address), 0) + _size(used)
        utilization = self._utilization(busy)
        return [
            GpuProcess(
                device_id=cards[address].index,
                device_uuid=cards[address].uuid,
                pid=pid,
                used_memory=used,
                gpu_utilization=utilization.get((pid, address), 0.0),
            )
            for (pid, address), used in sorted(vram.items())
        ]

    def _utilization(self, busy: dict[tuple[int, str, str], int]) -> dict[tuple[int, str], float]:
        """Busy percent since the previous process read; nothing to compare on the first."""
        now = self._clock()
        with self._lock:
            previous, previous_at = self._busy_ns, self._busy_at
            self._busy_ns, self._busy_at = busy, now
        if previous_at is None or now <= previous_at:
            return {}
        window_ns = (now - previous_at) * 1e9
        shares: dict[tuple[int, str], float] = {}
        for client, busy_ns in busy.items():
            before = previous.get(client)
            if before is not None and busy_ns >= before:
                key = (client[0], client[1])
                shares[key] = shares.get(key, 0.0) + (busy_ns - before) / window_ns * 100.0
        return {key: min(share, 100.0) for key, share in shares.items()}


def find_cards(sysfs: Path, rocm: str | None = None) -> list[AmdCard]:
    """amdgpu cards, in card-number order; connectors (card0-DP-1) and render nodes skipped."""
    drm = sysfs / "class" / "drm"
    try:
        numbered = sorted(
            (int(m.group(1)), entry)
            for entry in drm.iterdir()
            if (m := _CARD.fullmatch(entry.name))
        )
    except OSError:
        return []
    cards: list[AmdCard] = []
    for _, entry in numbered:
        device = entry / "device"
        if _read_text(device / "vendor") != AMD_VENDOR_ID:
            continue
        if not (device / "gpu_busy_percent").exists() or len(cards) >= MAX_DEVICES:
            continue
        cards.append(_read_card_static(len(cards), device, rocm))
    return cards


def _read_card_static(index: int, device: Path, rocm: str | None) -> AmdCard:
    address = _pci_address(device)
    hwmon = _hwmon(device)
    name = _read_text(device / "product_name") or (
        f"AMD Radeon Graphics [{_read_text(device / 'device') or 'unknown'}]"
    )
    detail = static_detail(device, hwmon, name=name, pci_address=address, rocm=rocm)
    return AmdCard(
        index=index,
        device=device,
        hwmon=hwmon,
        temperature_input=temperature_input(hwmon) if hwmon else None,
        pci_address=address,
        name=name,
        uuid=_read_text(device / "unique_id") or address,
        total_memory=_read_int(device / "mem_info_vram_total") or 0,
        detail=detail,
    )


def _pci_address(device: Path) -> str:
    # `device` is a symlink into /sys/devices named by the PCI address; a copied
    # tree (or an odd mount) keeps the address in uevent only.
    resolved = device.resolve().name
    if _PCI_ADDRESS.fullmatch(resolved):
        return resolved
    for line in (_read_text(device / "uevent") or "").splitlines():
        key, _, value = line.partition("=")
        if key == "PCI_SLOT_NAME":
            return value.strip()
    return device.parent.name


def _hwmon(device: Path) -> Path | None:
    try:
        candidates = sorted((device / "hwmon").iterdir())
    except OSError:
        return None
    named = [path for path in candidates if _read_text(path / "name") == "amdgpu"]
    chosen = named or candidates
    return chosen[0] if chosen else None


def temperature_input(hwmon: Path) -> Path | None:
    """The tempN_input of the first labelled sensor among edge, junction and mem; temp1
    on kernels that label nothing."""
    labels: dict[str, Path] = {}
    try:
        entries = sorted(hwmon.iterdir())
    except OSError:
        return None
    for entry in entries:
        if match := _TEMP_LABEL.fullmatch(entry.name):
            label = (_read_text(entry) or "").lower()
            labels.setdefault(label, hwmon / f"temp{match.group(1)}_input")
    if not labels:
        return hwmon / "temp1_input"
    for wanted in _TEMPERATURE_LABELS:
        if wanted in labels:
            return labels[wanted]
    return None


def current_level_mhz(path: Path) -> int | None:
    """The DPM level marked `*` in pp_dpm_sclk / pp_dpm_mclk ('1: 1200Mhz *' -> 1200)."""
    match = _CURRENT_LEVEL.search(_read_text(path) or "")
    return int(match.group(1)) if match else None


def _amdgpu_fdinfos(procfs: Path) -> Iterator[tuple[int, str, dict[str, str]]]:
    """(pid, fd, fdinfo fields) of every open amdgpu DRM file the caller may inspect."""
    budget = MAX_FDS_SCANNED
    try:
        pids = sorted(int(entry.name) for entry in procfs.iterdir() if entry.name.isdigit())
    except OSError:
        return
    for pid in pids:
        fd_dir = procfs / str(pid) / "fd"
        try:
            fds = sorted(fd_dir.iterdir(), key=lambda path: path.name)
        except OSError:  # exited, or another user's process
            continue
        for fd in fds:
            budget -= 1
            if budget < 0:
                return
            try:
                # readlink is far cheaper than reading fdinfo, and filters out everything
                # but DRM device files.
                if not str(fd.readlink()).startswith("/dev/dri/"):
                    continue
            except OSError:
                continue
            fields = _parse_fdinfo(_read_text(procfs / str(pid) / "fdinfo" / fd.name) or "")
            if fields.get("drm-driver") == "amdgpu":
                yield pid, fd.name, fields


def _parse_fdinfo(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def _size(text: str) -> int:
    """'1048576 KiB' -> bytes; anything unparsable counts as 0."""
    number, _, unit = text.strip().partition(" ")
    try:
        return int(number) * _SIZE_UNITS.get(unit.strip(), 0)
    except ValueError:
        return 0


def _nanoseconds(text: str | None) -> int:
    """'123456789 ns' -> 123456789."""
    try:
        return int((text or "0").split()[0])
    except (IndexError, ValueError):
        return 0


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read_text(path)
    try:
        return int(text) if text else None
    except ValueError:
        return None
