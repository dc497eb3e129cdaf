"""Chassis families: DMI identity, node power (`{:.2}`), BMC temperatures (`{:.1}`), fans.

Label set CH = `hostname, instance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from smicast.prometheus.text import Family, Samples, detail_value, fixed, labels, parse_f64
from smicast.schema import ChassisInfo

CHASSIS_FAMILIES: Final = (
    Family("all_smi_chassis_info", "Chassis/node identification information"),
    Family("all_smi_chassis_power_watts", "Total chassis power consumption in watts"),
    Family("all_smi_chassis_thermal_pressure_info", "Thermal pressure level (macOS)"),
    Family("all_smi_chassis_cpu_power_watts", "CPU power consumption in watts"),
    Family("all_smi_chassis_gpu_power_watts", "GPU power consumption in watts"),
    Family(
        "all_smi_chassis_ane_power_watts", "ANE (Apple Neural Engine) power consumption in watts"
    ),
    Family("all_smi_chassis_inlet_temperature_celsius", "Chassis inlet temperature in Celsius"),
    Family("all_smi_chassis_outlet_temperature_celsius", "Chassis outlet temperature in Celsius"),
    Family("all_smi_chassis_fan_speed_rpm", "Fan speed in RPM"),
)

# (detail key, label) for `all_smi_chassis_info`, in all-smi's label order.
_INFO_LABELS: Final = (
    ("Product Name", "product_name"),
    ("Vendor", "vendor"),
    ("Board", "board"),
    ("Version", "version"),
    ("BIOS Version", "bios_version"),
    ("platform", "platform"),
)

_COMPONENT_POWER: Final = (
    ("cpu_power_watts", "all_smi_chassis_cpu_power_watts"),
    ("gpu_power_watts", "all_smi_chassis_gpu_power_watts"),
    ("ane_power_watts", "all_smi_chassis_ane_power_watts"),
)


def render_chassis(chassis: Sequence[ChassisInfo], out: list[str]) -> None:
    samples = Samples()
    add = samples.add
    for node in chassis:
        base = (("hostname", node.hostname), ("instance", node.instance))
        ch = labels(base)
        detail = node.detail
        identity = [
            (label, detail_value(detail[key])) for key, label in _INFO_LABELS if key in detail
        ]
        add("all_smi_chassis_info", labels((*base, *identity)), "1")
        add("all_smi_chassis_power_watts", ch, fixed(node.total_power_watts, 2))
        if node.thermal_pressure is not None:
            level = labels((*base, ("level", node.thermal_pressure)))
            add("all_smi_chassis_thermal_pressure_info", level, "1")
        for key, family in _COMPONENT_POWER:
            if key in detail:
                add(family, ch, fixed(parse_f64(detail[key]), 2))
        add("all_smi_chassis_inlet_temperature_celsius", ch, fixed(node.inlet_temperature, 1))
        add("all_smi_chassis_outlet_temperature_celsius", ch, fixed(node.outlet_temperature, 1))
        for fan in node.fan_speeds:
            fan_labels = labels((*base, ("fan_id", str(fan.id)), ("fan_name", fan.name)))
            add("all_smi_chassis_fan_speed_rpm", fan_labels, str(fan.speed_rpm))
    samples.write(CHASSIS_FAMILIES, out)
