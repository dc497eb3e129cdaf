from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from msgspec import UNSET

from smicast.readers import GpuProcess
from smicast.readers.amd import AmdReader, current_level_mhz
from smicast.schema import GpuInfo, local_time_text
from tests.reader_contract import check_reader

DATA = Path(__file__).parent / "data" / "amd"
NOW = 1_776_686_400.0
GIB = 1024**3


class SteppingClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_reader(root: Path = DATA, clock: SteppingClock | None = None) -> AmdReader:
    return AmdReader(
        root / "sys",
        root / "proc",
        hostname="node1",
        clock=clock or SteppingClock(),
        rocm=root / "opt" / "rocm",
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A writable copy of the captured tree; symlinks stay symlinks."""
    root = tmp_path / "amd"
    shutil.copytree(DATA, root, symlinks=True)
    return root


def test_contract() -> None:
    results = check_reader(make_reader(), reads=2)
    assert [len(items) for items in results] == [2, 2]


def test_mi210_fields_exactly() -> None:
    assert make_reader().read()[0] == GpuInfo(
        uuid="7d1c2ea55e3f8b21",
        time=local_time_text(NOW),
        name="AMD Instinct MI210",
        device_type="GPU",
        host_id="node1",
        hostname="node1",
        instance="node1",
        utilization=37.0,
        ane_utilization=0.0,
        temperature=48,
        used_memory=16 * GIB,
        total_memory=68_702_699_520,
        frequency=1700,
        power_consumption=187.0,
        fan_speed_rpm=None,
        pcie_link_generation=4,
        pcie_link_width=16,
        # all-smi's AMD keys and value formats; nothing in it moves between reads.
        detail={
            "Device Name": "AMD Instinct MI210",
            "PCI Bus": "0000:03:00.0",
            "ROCm Version": "6.3.1-48",
            "lib_name": "ROCm",
            "lib_version": "6.3.1-48",
            "Device ID": "0x740f",
            "Revision ID": "0x02",
            "VBIOS Version": "113-D67301-063",
            "Power Cap": "300 W",
            "Power Cap (Max)": "300 W",
            "Max GPU Link": "Gen4 x16",
            "Min DPM Link": "Gen1 x16",
            "Max DPM Link": "Gen4 x16",
        },
    )


def test_radeon_without_product_name_or_unique_id() -> None:
    gpu = make_reader().read()[1]
    # No product_name: the PCI device id names it; no unique_id: the PCI address,
    # read from the name of the /sys/devices directory the symlink points at.
    assert (gpu.name, gpu.uuid) == ("AMD Radeon Graphics [0x7448]", "0000:43:00.0")
    assert (gpu.utilization, gpu.temperature, gpu.frequency) == (3.0, 41, 1223)
    assert (gpu.used_memory, gpu.total_memory) == (GIB, 51_522_830_336)
    assert gpu.power_consumption == 27.0  # power1_input: no power1_average on newer kernels
    assert gpu.fan_speed_rpm == 1450
    # The link trained down to Gen1 at idle; the card can do Gen4.
    assert (gpu.pcie_link_generation, gpu.pcie_link_width) == (1, 16)
    assert gpu.detail["Max GPU Link"] == "Gen4 x16"
    assert gpu.detail["Device ID"] == "0x7448"
    # Live readings are typed fields only, never `detail` (they would churn all_smi_gpu_info).
    assert not {"Fan Speed", "Current Link", "Memory Clock"} & gpu.detail.keys()


def test_connectors_render_nodes_and_other_vendors_are_skipped() -> None:
    reader = make_reader()
    assert [card.device.parent.name for card in reader.cards] == ["card0", "card1"]
    assert [card.pci_address for card in reader.cards] == ["0000:03:00.0", "0000:43:00.0"]


def test_probe_finds_the_cards() -> None:
    reader = AmdReader.probe(
        sysfs=DATA / "sys", procfs=DATA / "proc", hostname="node1", clock=SteppingClock()
    )
    assert reader is not None
    assert reader.name == "amd"
    assert len(reader.read()) == 2


def test_probe_is_none_on_an_empty_tree(tmp_path: Path) -> None:
    assert (
        AmdReader.probe(sysfs=tmp_path, procfs=tmp_path, hostname="n", clock=SteppingClock())
        is None
    )


def test_probe_is_none_without_amdgpu_cards(tree: Path) -> None:
    drm = tree / "sys" / "class" / "drm"
    shutil.rmtree(drm / "card0")
    (drm / "card1" / "device").unlink()
    reader = AmdReader.probe(
        sysfs=tree / "sys", procfs=tree / "proc", hostname="n", clock=SteppingClock()
    )
    assert reader is None


def test_missing_files_make_only_those_fields_unknown(tree: Path) -> None:
    reader = make_reader(tree)
    device = tree / "sys" / "class" / "drm" / "card0" / "device"
    for name in ("gpu_busy_percent", "mem_info_vram_used", "pp_dpm_sclk", "current_link_speed"):
        (device / name).unlink()
    (device / "hwmon" / "hwmon3" / "temp1_input").write_text("garbage\n")
    (device / "hwmon" / "hwmon3" / "power1_average").unlink()
    gpu = reader.read()[0]
    assert gpu.utilization == -1.0
    assert gpu.used_memory == 0
    assert gpu.total_memory == 68_702_699_520
    assert gpu.frequency == 0
    assert gpu.temperature == 0
    assert gpu.power_consumption == -1.0
    assert gpu.pcie_link_generation is UNSET
    assert gpu.pcie_link_width == 16
    assert reader.read()[1] == make_reader().read()[1]


def test_a_card_without_hwmon(tree: Path) -> None:
    shutil.rmtree(tree / "sys" / "class" / "drm" / "card0" / "device" / "hwmon")
    gpu = make_reader(tree).read()[0]
    assert (gpu.temperature, gpu.power_consumption, gpu.fan_speed_rpm) == (0, -1.0, None)
    assert "power_limit_current" not in gpu.detail
    assert gpu.utilization == 37.0


def test_identity_is_read_once_and_load_every_read(tree: Path) -> None:
    reader = make_reader(tree)
    device = tree / "sys" / "class" / "drm" / "card0" / "device"
    (device / "product_name").write_text("renamed\n")
    (device / "gpu_busy_percent").write_text("99\n")
    (device / "pp_dpm_sclk").write_text("0: 500Mhz *\n1: 1700Mhz \n")
    gpu = reader.read()[0]
    assert (gpu.name, gpu.utilization, gpu.frequency) == ("AMD Instinct MI210", 99.0, 500)


def test_current_dpm_level(tmp_path: Path) -> None:
    path = tmp_path / "pp_dpm_sclk"
    assert current_level_mhz(path) is None
    path.write_text("0: 500Mhz \n1: 1700Mhz *\n")
    assert current_level_mhz(path) == 1700
    # RDNA3 lists a deep-sleep level named S ahead of the numbered ones.
    path.write_text("S: 19Mhz *\n0: 500Mhz \n1: 2500Mhz \n")
    assert current_level_mhz(path) == 19


def test_process_vram_per_pid_and_card() -> None:
    mi210, w7900 = "7d1c2ea55e3f8b21", "0000:43:00.0"
    assert make_reader().read_processes() == [
        # fds 5 and 6 of 4242 share client 42: its 4 GiB is counted once.
        GpuProcess(
            device_id=0, device_uuid=mi210, pid=4242, used_memory=4 * GIB, gpu_utilization=0.0
        ),
        GpuProcess(
            device_id=1, device_uuid=w7900, pid=4242, used_memory=GIB // 2, gpu_utilization=0.0
        ),
        # Two clients of 5151 on the MI210: 2 GiB + 1 GiB.
        GpuProcess(
            device_id=0, device_uuid=mi210, pid=5151, used_memory=3 * GIB, gpu_utilization=0.0
        ),
    ]


def test_process_utilization_from_engine_time_between_reads(tree: Path) -> None:
    clock = SteppingClock()
    reader = make_reader(tree, clock)
    reader.read_processes()
    fdinfo = tree / "proc" / "4242" / "fdinfo"
    for fd in ("5", "6"):
        text = (fdinfo / fd).read_text()
        text = text.replace("1200000000 ns", "1700000000 ns").replace(
            "5300000000 ns", "5800000000 ns"
        )
        (fdinfo / fd).write_text(text)
    other = tree / "proc" / "5151" / "fdinfo" / "4"
    other.write_text(other.read_text().replace("8000000000 ns", "8200000000 ns"))
    clock.now += 2.0
    shares = {(p.pid, p.device_id): p.gpu_utilization for p in reader.read_processes()}
    # 4242: 0.5 s gfx + 0.5 s compute in 2 s; 5151: 0.2 s compute in 2 s.
    assert shares == {(4242, 0): 50.0, (4242, 1): 0.0, (5151, 0): 10.0}


def test_processes_of_other_drivers_and_files_are_ignored(tree: Path) -> None:
    shutil.rmtree(tree / "proc" / "4242")
    shutil.rmtree(tree / "proc" / "5151")
    assert make_reader(tree).read_processes() == []


def test_no_proc_means_no_processes(tmp_path: Path) -> None:
    reader = AmdReader(DATA / "sys", tmp_path / "absent", hostname="n", clock=SteppingClock())
    assert reader.read_processes() == []


MI300 = Path(__file__).parent / "data" / "amd-mi300"


def test_mi300_without_an_edge_sensor_reports_junction() -> None:
    [gpu] = check_reader(make_reader(MI300))[-1]
    assert isinstance(gpu, GpuInfo)
    assert gpu.name == "AMD Instinct MI300X"
    assert gpu.temperature == 57  # temp2 "junction"; there is no temp1 "edge"
    assert (gpu.utilization, gpu.frequency, gpu.power_consumption) == (62.0, 2100, 512.0)


def test_temperature_sensor_is_chosen_by_label(tree: Path) -> None:
    hwmon = tree / "sys" / "class" / "drm" / "card0" / "device" / "hwmon" / "hwmon3"
    assert make_reader(tree).read()[0].temperature == 48  # temp1 "edge"
    # Labels, not numbers, decide: a kernel that numbers edge second still reads edge.
    (hwmon / "temp1_label").write_text("junction\n")
    (hwmon / "temp2_label").write_text("edge\n")
    assert make_reader(tree).read()[0].temperature == round(
        int((hwmon / "temp2_input").read_text()) / 1000
    )
    (hwmon / "temp2_label").write_text("mem\n")
    assert make_reader(tree).read()[0].temperature == 48  # junction before mem
    # No labels at all (old kernels): temp1.
    (hwmon / "temp1_label").unlink()
    (hwmon / "temp2_label").unlink()
    assert make_reader(tree).read()[0].temperature == 48


def test_detail_is_read_once_while_live_values_move(tree: Path) -> None:
    reader = make_reader(tree)
    first = reader.read()
    device = tree / "sys" / "class" / "drm" / "card1" / "device"
    (device / "current_link_speed").write_text("16.0 GT/s PCIe\n")
    (device / "current_link_width").write_text("8\n")
    (device / "hwmon" / "hwmon5" / "fan1_input").write_text("2900\n")
    (device / "hwmon" / "hwmon5" / "power1_cap").write_text("200000000\n")
    (device / "pp_dpm_mclk").write_text("0: 96Mhz\n1: 456Mhz *\n")
    (device / "power_dpm_force_performance_level").write_text("manual\n")
    second = reader.read()
    assert [gpu.detail for gpu in second] == [gpu.detail for gpu in first]
    assert (first[1].pcie_link_generation, first[1].pcie_link_width) == (1, 16)
    assert (second[1].pcie_link_generation, second[1].pcie_link_width) == (4, 8)
    assert (first[1].fan_speed_rpm, second[1].fan_speed_rpm) == (1450, 2900)
    assert second[1].detail["Power Cap"] == "241 W"  # as read first, like all-smi


def test_no_rocm_install_means_no_rocm_keys(tree: Path) -> None:
    shutil.rmtree(tree / "opt")
    detail = make_reader(tree).read()[0].detail
    assert not {"ROCm Version", "lib_name", "lib_version"} & detail.keys()
