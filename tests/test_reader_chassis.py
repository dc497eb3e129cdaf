"""ChassisReader against captured DMI and hwmon trees."""

from __future__ import annotations

import shutil
from pathlib import Path

from smicast.include import Section
from smicast.readers.chassis import ChassisReader
from smicast.schema import ChassisInfo, FanInfo, local_time_text
from tests.reader_contract import check_reader

DATA = Path(__file__).parent / "data" / "linux"
NOW_S = 1_776_700_000.0


def test_dell_server_identity_and_fans() -> None:
    reader = ChassisReader(DATA / "intel-2s" / "sys", hostname="gpu-node-1", clock=lambda: NOW_S)
    assert reader.name == "chassis" and reader.section is Section.CHASSIS
    [chassis] = check_reader(reader)[-1]
    assert isinstance(chassis, ChassisInfo)
    assert chassis.host_id == chassis.hostname == chassis.instance == "gpu-node-1"
    assert chassis.detail == {
        "Product Name": "PowerEdge R740xd",
        "Vendor": "Dell Inc.",
        "Board": "0WXD1Y",
        "BIOS Version": "2.19.1",
        "platform": "Linux",
    }  # product_version "Not Specified" is a placeholder
    # hwmon10 after hwmon2 and fan10 after fan2: numeric order, not text order.
    assert chassis.fan_speeds == [
        FanInfo(id=0, name="Processor Fan", speed_rpm=4320, max_rpm=14000),
        FanInfo(id=1, name="Motherboard Fan", speed_rpm=3840, max_rpm=14000),
        FanInfo(id=2, name="nct6779 fan1", speed_rpm=1200, max_rpm=0),
        FanInfo(id=3, name="nct6779 fan2", speed_rpm=0, max_rpm=0),
        FanInfo(id=4, name="nct6779 fan10", speed_rpm=900, max_rpm=0),
    ]
    # The collector backfills power from the GPUs; nothing here needs a BMC.
    assert chassis.total_power_watts is None
    assert chassis.inlet_temperature is None and chassis.outlet_temperature is None
    assert chassis.thermal_pressure is None and chassis.psu_status == []
    assert chassis.time == local_time_text(NOW_S)


def test_placeholders_and_missing_files_are_omitted() -> None:
    [chassis] = ChassisReader(DATA / "amd-1s" / "sys", hostname="h").read()
    assert chassis.detail == {"Board": "B450M Pro4", "BIOS Version": "P5.60", "platform": "Linux"}
    assert [(f.name, f.speed_rpm) for f in chassis.fan_speeds] == [
        ("nct6797 fan1", 1034),
        ("CHA_FAN1", 652),
    ]


def test_fan_speeds_are_read_each_time_and_a_failing_fan_is_skipped(tmp_path: Path) -> None:
    sys = tmp_path / "sys"
    shutil.copytree(DATA / "intel-2s" / "sys", sys)
    reader = ChassisReader(sys, hostname="h")
    hwmon2 = sys / "class" / "hwmon" / "hwmon2"
    (hwmon2 / "fan1_input").write_text("5100\n")
    (hwmon2 / "fan2_input").unlink()
    speeds = {f.id: f.speed_rpm for f in reader.read()[0].fan_speeds}
    assert speeds == {0: 5100, 2: 1200, 3: 0, 4: 900}  # ids stay with their fans


def test_no_sysfs_still_gives_one_chassis(tmp_path: Path) -> None:
    [chassis] = ChassisReader(tmp_path, hostname="h").read()
    assert chassis.detail == {"platform": "Linux"}
    assert chassis.fan_speeds == []


def test_this_machine() -> None:
    [chassis] = check_reader(ChassisReader())[-1]
    assert isinstance(chassis, ChassisInfo)
    assert chassis.detail["platform"] == "Linux"
    assert all(f.speed_rpm >= 0 for f in chassis.fan_speeds)
