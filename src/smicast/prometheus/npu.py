"""NPU families: the common `all_smi_npu_*` set, then Gaudi and Tenstorrent extras.

Label set N = `npu, instance, npu_uuid, npu_index` (position in the full `gpus`
list). Everything vendor-specific comes from `detail`, so only keys a reader
writes produce a family; Rebellions, Furiosa and TPU extras are not exported.

Of all-smi's common NPU families only `all_smi_npu_firmware_info` is on the wire:
its exporter defines `all_smi_npu_device_info`, `_temperature_celsius`,
`_power_watts` and `_power_draw_watts` but no vendor path calls them. The firmware
series has its label values sanitized as all-smi does (`npu="Intel_Gaudi_3"`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from smicast.prometheus.text import Family, Pairs, Samples, labels, number, parse_f64
from smicast.schema import GpuInfo

NPU_TYPES: Final = frozenset({"NPU", "TPU"})

_COMMON: Final = (Family("all_smi_npu_firmware_info", "NPU firmware version"),)
# all-smi's CommonNpuExporter::sanitize_label: at most 128 bytes, then every character
# outside [A-Za-z0-9_.-] becomes `_` (one per character, multi-byte ones included).
MAX_SANITIZED_LABEL_BYTES: Final = 128
_NOT_SAFE: Final = re.compile(r"[^A-Za-z0-9_.\-]")


def sanitize_label(value: str) -> str:
    cut = value.encode("utf-8")[:MAX_SANITIZED_LABEL_BYTES].decode("utf-8", "ignore")
    return _NOT_SAFE.sub("_", cut)


_GAUDI: Final = (
    Family("all_smi_gaudi_device_info", "Intel Gaudi device information"),
    Family("all_smi_gaudi_internal_name_info", "Intel Gaudi internal device name"),
    Family("all_smi_gaudi_driver_info", "Intel Gaudi (Habana) driver version"),
    Family(
        "all_smi_gaudi_aip_utilization_percent", "Gaudi AIP (AI Processor) utilization percentage"
    ),
    Family("all_smi_gaudi_memory_used_bytes", "Gaudi HBM memory used in bytes"),
    Family("all_smi_gaudi_memory_total_bytes", "Gaudi HBM total memory in bytes"),
    Family("all_smi_gaudi_memory_utilization_percent", "Gaudi HBM memory utilization percentage"),
    Family("all_smi_gaudi_power_draw_watts", "Gaudi current power consumption in watts"),
    Family("all_smi_gaudi_power_max_watts", "Gaudi maximum power limit in watts"),
    Family("all_smi_gaudi_power_utilization_percent", "Gaudi power utilization percentage"),
    Family("all_smi_gaudi_temperature_celsius", "Gaudi AIP temperature in Celsius"),
)


def _hex_register(text: str) -> float | None:
    """A 32-bit register written as hex (`0x1f`): at most 8 digits."""
    digits = text.removeprefix("0x").strip()
    if not 0 < len(digits) <= 8 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        return None
    return float(int(digits, 16))


def _number(text: str) -> float | None:
    return parse_f64(text, trim=True)


_TT: Final = "all_smi_tenstorrent_"

# Info families: (family suffix, help, detail key, label name).
_TT_INFO: Final = (
    ("arc_firmware_info", "ARC firmware version", "arc_fw_version", "version"),
    ("eth_firmware_info", "Ethernet firmware version", "eth_fw_version", "version"),
    ("firmware_date_info", "Firmware build date", "fw_date", "date"),
    ("ddr_firmware_info", "DDR firmware version", "ddr_fw_version", "version"),
    (
        "spibootrom_firmware_info",
        "SPI Boot ROM firmware version",
        "spibootrom_fw_version",
        "version",
    ),
)

# Numeric families, in all-smi's order around the status infos: (suffix, help, detail key).
_TT_NUMBERS: Final = (
    ("asic_temperature_celsius", "ASIC temperature in celsius", "asic_temperature"),
    ("vreg_temperature_celsius", "Voltage regulator temperature in celsius", "vreg_temperature"),
    ("inlet_temperature_celsius", "Inlet temperature in celsius", "inlet_temperature"),
    ("outlet1_temperature_celsius", "Outlet 1 temperature in celsius", "outlet_temperature1"),
    ("outlet2_temperature_celsius", "Outlet 2 temperature in celsius", "outlet_temperature2"),
    ("aiclk_mhz", "AI clock frequency in MHz", "aiclk_mhz"),
    ("axiclk_mhz", "AXI clock frequency in MHz", "axiclk_mhz"),
    ("arcclk_mhz", "ARC clock frequency in MHz", "arcclk_mhz"),
    ("voltage_volts", "Core voltage in volts", "voltage"),
    ("current_amperes", "Current in amperes", "current"),
    ("power_limit_tdp_watts", "TDP power limit in watts", "power_limit_tdp"),
    ("power_limit_tdc_amperes", "TDC current limit in amperes", "power_limit_tdc"),
    ("tdp_limit_watts", "TDP limit in watts", "tdp_limit"),
    ("tdc_limit_amperes", "TDC limit in amperes", "tdc_limit"),
    ("thermal_limit_celsius", "Thermal limit in celsius", "thermal_limit"),
    ("heartbeat", "Device heartbeat counter", "heartbeat"),
    ("power_raw_watts", "Raw power consumption in watts", "power_watts"),
)
_TT_REGISTERS: Final = (
    ("ddr_status", "DDR status register value", "ddr_status"),
    ("arc0_health", "ARC0 health counter", "arc0_health"),
    ("arc3_health", "ARC3 health counter", "arc3_health"),
    ("faults", "Fault register value", "faults"),
    ("throttler", "Throttler state register value", "throttler"),
    ("fan_speed_percent", "Fan speed percentage", "fan_speed"),
    ("fan_rpm", "Fan speed in RPM", "fan_rpm"),
)
# all-smi types these as counters (without `_total`) and reads these as hex registers.
_TT_COUNTERS: Final = frozenset({"heartbeat", "arc0_health", "arc3_health"})
_TT_HEX: Final = frozenset({"ddr_status", "faults", "throttler"})


def _tt_family(suffix: str, help_text: str) -> Family:
    return Family(_TT + suffix, help_text, "counter" if suffix in _TT_COUNTERS else "gauge")


_TENSTORRENT: Final = (
    *(_tt_family(suffix, help_text) for suffix, help_text, *_ in _TT_INFO),
    *(_tt_family(suffix, help_text) for suffix, help_text, _ in _TT_NUMBERS),
    _tt_family("pcie_status_info", "PCIe status register value"),
    _tt_family("eth_status_info", "Ethernet status register value"),
    *(_tt_family(suffix, help_text) for suffix, help_text, _ in _TT_REGISTERS),
    _tt_family("board_info", "Tenstorrent board information"),
    _tt_family("collection_method_info", "Data collection method used"),
    _tt_family("pcie_address_info", "PCIe address information"),
    _tt_family("pcie_device_info", "PCIe device identification"),
    _tt_family("pcie_generation", "PCIe generation"),
    _tt_family("pcie_width", "PCIe link width"),
    _tt_family("dram_info", "DRAM configuration information"),
)

NPU_FAMILIES: Final = (*_COMMON, *_GAUDI, *_TENSTORRENT)


def _firmware(gpu: GpuInfo, index: str, add: Callable[[str, str, str | None], None]) -> None:
    firmware = gpu.detail.get("firmware")
    if firmware is None:
        return
    pairs = (
        ("npu", sanitize_label(gpu.name)),
        ("instance", sanitize_label(gpu.instance)),
        ("npu_uuid", sanitize_label(gpu.uuid)),
        ("npu_index", index),
        ("firmware", sanitize_label(firmware)),
    )
    add("all_smi_npu_firmware_info", labels(pairs), "1")


def _gaudi(gpu: GpuInfo, base: Pairs, n: str, add: Callable[[str, str, str | None], None]) -> None:
    detail = gpu.detail
    add("all_smi_gaudi_device_info", n, "1")
    internal = detail.get("Internal Name")
    if internal is not None:
        add("all_smi_gaudi_internal_name_info", labels((*base, ("internal_name", internal))), "1")
    driver = detail.get("lib_version")
    if driver is not None:
        add("all_smi_gaudi_driver_info", labels((*base, ("version", driver))), "1")
    add("all_smi_gaudi_aip_utilization_percent", n, number(gpu.utilization))
    add("all_smi_gaudi_memory_used_bytes", n, str(gpu.used_memory))
    add("all_smi_gaudi_memory_total_bytes", n, str(gpu.total_memory))
    total = gpu.total_memory
    mem_pct = gpu.used_memory / total * 100 if total > 0 else 0.0
    add("all_smi_gaudi_memory_utilization_percent", n, number(mem_pct))
    power = gpu.power_consumption
    add("all_smi_gaudi_power_draw_watts", n, number(power))
    power_max = parse_f64(detail.get("power_limit_max", ""))
    if power_max is not None:
        add("all_smi_gaudi_power_max_watts", n, number(power_max))
        if power is not None:
            pct = power / power_max * 100 if power_max > 0 else 0.0
            add("all_smi_gaudi_power_utilization_percent", n, number(pct))
    add("all_smi_gaudi_temperature_celsius", n, str(gpu.temperature))


def _architecture(name: str) -> str:
    for marker in ("Grayskull", "Wormhole", "Blackhole"):
        if marker in name:
            return marker.lower()
    return "unknown"


def _tenstorrent(
    gpu: GpuInfo, base: Pairs, n: str, add: Callable[[str, str, str | None], None]
) -> None:
    detail = gpu.detail
    for suffix, _, key, label in _TT_INFO:
        if key in detail:
            add(_TT + suffix, labels((*base, (label, detail[key]))), "1")
    for suffix, _, key in (*_TT_NUMBERS, *_TT_REGISTERS):
        if key in detail:
            parse = _hex_register if suffix in _TT_HEX else _number
            add(_TT + suffix, n, number(parse(detail[key])))
    if "pcie_status" in detail:
        pcie = labels((*base, ("status", detail["pcie_status"])))
        add("all_smi_tenstorrent_pcie_status_info", pcie, "1")
    for port in ("0", "1"):
        status = detail.get(f"eth_status{port}")
        if status is not None:
            eth = labels((*base, ("port", port), ("status", status)))
            add("all_smi_tenstorrent_eth_status_info", eth, "1")
    if "board_type" in detail:
        board = (
            ("board_type", detail["board_type"]),
            ("board_id", detail.get("board_id", "")),
            ("architecture", _architecture(gpu.name)),
        )
        add("all_smi_tenstorrent_board_info", labels((*base, *board)), "1")
    if "collection_method" in detail:
        method = labels((*base, ("method", detail["collection_method"])))
        add("all_smi_tenstorrent_collection_method_info", method, "1")
    if "pcie_address" in detail:
        address = labels((*base, ("address", detail["pcie_address"])))
        add("all_smi_tenstorrent_pcie_address_info", address, "1")
    if "pcie_vendor_id" in detail and "pcie_device_id" in detail:
        ids = (("vendor_id", detail["pcie_vendor_id"]), ("device_id", detail["pcie_device_id"]))
        add("all_smi_tenstorrent_pcie_device_info", labels((*base, *ids)), "1")
    link_gen = detail.get("pcie_link_gen", "")
    if link_gen.startswith("Gen"):
        add("all_smi_tenstorrent_pcie_generation", n, number(_number(link_gen[3:])))
    link_width = detail.get("pcie_link_width", "")
    if link_width.startswith("x"):
        add("all_smi_tenstorrent_pcie_width", n, number(_number(link_width[1:])))
    if "dram_speed" in detail:
        dram = labels((*base, ("speed", detail["dram_speed"])))
        add("all_smi_tenstorrent_dram_info", dram, "1")


def render_npus(gpus: Sequence[GpuInfo], out: list[str]) -> None:
    samples = Samples()
    for index, gpu in enumerate(gpus):
        if gpu.device_type not in NPU_TYPES:
            continue
        base: Pairs = (
            ("npu", gpu.name),
            ("instance", gpu.instance),
            ("npu_uuid", gpu.uuid),
            ("npu_index", str(index)),
        )
        n = labels(base)
        _firmware(gpu, str(index), samples.add)
        if "Tenstorrent" in gpu.name:
            _tenstorrent(gpu, base, n, samples.add)
        elif "Gaudi" in gpu.name:
            _gaudi(gpu, base, n, samples.add)
    samples.write(NPU_FAMILIES, out)
