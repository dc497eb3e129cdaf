from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from msgspec import UNSET

from smicast.collect import Collector
from smicast.include import Section
from smicast.readers import GpuProcess, PartialReadError, ReadError
from smicast.readers.nvidia import NvidiaReader
from smicast.schema import MAX_GPU_FAN_RPM, GpuInfo, NvLinkRemoteDevice, local_time_text
from tests.fake_nvml import (
    FakeDevice,
    FakeHandle,
    FakeNvml,
    FakeProcess,
    FakeSample,
    NVMLError,
    NVMLError_DriverNotLoaded,
    NVMLError_FunctionNotFound,
    NVMLError_GpuIsLost,
    NVMLError_LibraryNotFound,
    NVMLError_NoPermission,
    NVMLError_NotFound,
    NVMLError_NotSupported,
    a100,
    h100,
)
from tests.reader_contract import check_reader

NOW = 1_776_686_400.0
GIB = 1024**3


def make_reader(nvml: FakeNvml, procfs: Path = Path("/proc")) -> NvidiaReader:
    return NvidiaReader(nvml, hostname="node1", clock=lambda: NOW, procfs=procfs)


def two_gpus(init_error: type[NVMLError] | None = None) -> FakeNvml:
    return FakeNvml([a100(), h100()], init_error=init_error)


def test_contract_on_two_devices() -> None:
    results = check_reader(make_reader(two_gpus()), reads=3)
    assert [[gpu.name for gpu in items] for items in results] == [
        ["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"]
    ] * 3


def test_a100_fields_exactly() -> None:
    gpu = make_reader(two_gpus()).read()[0]
    assert gpu == GpuInfo(
        uuid="GPU-a100",
        time=local_time_text(NOW),
        name="NVIDIA A100-SXM4-80GB",
        device_type="GPU",
        host_id="node1",
        hostname="node1",
        instance="node1",
        utilization=42.0,
        ane_utilization=0.0,
        temperature=55,
        used_memory=10 * GIB,
        total_memory=80 * GIB,
        frequency=1410,
        power_consumption=251.5,
        temperature_threshold_slowdown=89,
        temperature_threshold_shutdown=92,
        temperature_threshold_max_operating=87,
        temperature_threshold_acoustic=None,
        performance_state=0,
        fan_speed_rpm=None,
        pcie_link_generation=4,
        pcie_link_width=16,
        numa_node_id=0,
        gsp_firmware_mode=1,
        gsp_firmware_version="550.54.15",
        nvlink_remote_devices=[],
        gpm_metrics=None,
        # all-smi's create_device_detail, key for key, in its formats (Debug names,
        # `x16`, a quoted VBIOS string), as read at the first read.
        detail={
            "Driver Version": "550.54.15",
            "CUDA Version": "12.4",
            "lib_name": "CUDA",
            "lib_version": "12.4",
            "Brand": "Tesla",
            "architecture": "Ampere",
            "compute_mode": "Default",
            "vbios_version": '"92.00.45.00.03"',
            "PCIe Generation": "4",
            "PCIe Width": "x16",
            "pcie_gen_max": "4",
            "pcie_width_max": "16",
            "clock_graphics_max": "1410",
            "clock_memory_max": "1593",
            "power_limit_current": "400.00",
            "power_limit_default": "400.00",
            "power_limit_min": "100.00",
            "power_limit_max": "400.00",
            "performance_state": "Zero",
            "ecc_mode_current": "Enabled",
            "mig_mode_current": "0",
        },
    )


def test_h100_nvlinks_pending_modes_and_gsp_default() -> None:
    gpu = make_reader(two_gpus()).read()[1]
    # Link 2 is down, so it is not listed; link 4 reaches a GPU, the rest NvSwitches.
    assert gpu.nvlink_remote_devices == [
        NvLinkRemoteDevice(link_index=0, remote_type="switch"),
        NvLinkRemoteDevice(link_index=1, remote_type="switch"),
        NvLinkRemoteDevice(link_index=3, remote_type="switch"),
        NvLinkRemoteDevice(link_index=4, remote_type="gpu"),
    ]
    assert gpu.performance_state == 2
    assert gpu.temperature_threshold_acoustic == 83
    assert gpu.numa_node_id == 1
    assert gpu.gsp_firmware_mode == 2
    assert gpu.power_consumption == 612.345
    assert {k: gpu.detail[k] for k in gpu.detail if k.endswith(("_current", "_pending"))} == {
        "ecc_mode_current": "Enabled",
        "ecc_mode_pending": "Disabled",
        "mig_mode_current": "0",
        "mig_mode_pending": "1",
        "power_limit_current": "700.00",
    }
    assert (gpu.pcie_link_generation, gpu.pcie_link_width) == (5, 16)
    assert gpu.detail["performance_state"] == "Two"
    assert gpu.detail["Brand"] == "Nvidia"
    assert gpu.detail["architecture"] == "Hopper"
    assert gpu.detail["compute_mode"] == "ExclusiveProcess"


def test_wire_bytes_carry_the_remote_type_and_null_bandwidth() -> None:
    gpu = make_reader(two_gpus()).read()[1]
    wire = msgspec.json.decode(msgspec.json.encode(gpu))
    assert wire["nvlink_remote_devices"][3] == {
        "bandwidth_mb_s": None,
        "link_index": 4,
        "remote_type": "gpu",
    }


UNSUPPORTED_FIELDS = [
    ("nvmlDeviceGetUtilizationRates", {"utilization": -1.0}, ()),
    ("nvmlDeviceGetTemperature", {"temperature": 0}, ()),
    ("nvmlDeviceGetPowerUsage", {"power_consumption": -1.0}, ()),
    ("nvmlDeviceGetClockInfo", {"frequency": 0}, ()),
    ("nvmlDeviceGetPerformanceState", {"performance_state": None}, ("performance_state",)),
    ("nvmlDeviceGetPowerManagementLimit", {}, ("power_limit_current",)),
    (
        "nvmlDeviceGetCurrPcieLinkGeneration",
        {"pcie_link_generation": UNSET},
        ("PCIe Generation",),
    ),
    ("nvmlDeviceGetNvLinkState", {"nvlink_remote_devices": []}, ()),
]


@pytest.mark.parametrize(("call", "unknown", "gone_keys"), UNSUPPORTED_FIELDS)
@pytest.mark.parametrize("error", [NVMLError_NotSupported, NVMLError_NoPermission])
def test_an_unanswered_call_makes_only_its_field_unknown(
    call: str, unknown: dict[str, object], gone_keys: tuple[str, ...], error: type
) -> None:
    expected = make_reader(two_gpus()).read()[1]
    nvml = two_gpus()
    nvml.fail(call, error, device=1)
    gpus = make_reader(nvml).read()
    assert gpus[0] == make_reader(two_gpus()).read()[0]
    detail = {k: v for k, v in expected.detail.items() if k not in gone_keys}
    assert gpus[1] == msgspec.structs.replace(expected, detail=detail, **unknown)


def test_a_gpu_lost_mid_read_is_left_out_and_named_while_the_others_report() -> None:
    nvml = two_gpus()
    reader = make_reader(nvml)
    before = reader.read()
    nvml.fail("nvmlDeviceGetUtilizationRates", NVMLError_GpuIsLost, device=0)
    with pytest.raises(PartialReadError) as info:
        reader.read()
    assert [g.uuid for g in info.value.items] == [before[1].uuid]
    assert str(info.value) == f"nvidia: GPU 0 ({before[0].uuid}): GPU is lost"
    assert info.value.items[0].utilization == 97.0
    # Not permanent: once the GPU answers again (after a reset) it is opened again.
    nvml.heal("nvmlDeviceGetUtilizationRates", device=0)
    opened = nvml.calls["nvmlDeviceGetHandleByIndex"]
    assert [g.uuid for g in reader.read()] == [g.uuid for g in before]
    assert nvml.calls["nvmlDeviceGetHandleByIndex"] == opened + 1


def test_a_gpu_that_cannot_be_opened_because_it_is_lost_is_named() -> None:
    nvml = two_gpus()
    nvml.fail("nvmlDeviceGetHandleByIndex", NVMLError_GpuIsLost, device=1)
    reader = make_reader(nvml)
    with pytest.raises(PartialReadError) as info:
        reader.read()
    assert [g.uuid for g in info.value.items] == ["GPU-a100"]
    assert str(info.value) == "nvidia: GPU 1 (cannot be opened): GPU is lost"
    nvml.heal("nvmlDeviceGetHandleByIndex", device=1)
    assert len(reader.read()) == 2


def test_a_lost_gpu_through_the_collector_keeps_the_others_and_adds_an_error() -> None:
    nvml = two_gpus()
    reader = make_reader(nvml)
    reader.read()
    nvml.fail("nvmlDeviceGetMemoryInfo", NVMLError_GpuIsLost, device=1)
    snapshot = Collector([reader], timeout_s=5).collect(frozenset({Section.GPU}))
    assert snapshot.gpus is not UNSET and [g.uuid for g in snapshot.gpus] == ["GPU-a100"]
    assert snapshot.errors is not UNSET
    assert [(e.section, e.kind) for e in snapshot.errors] == [("gpu", "error")]
    assert "GPU is lost" in snapshot.errors[0].message


def test_unsupported_static_facts_are_left_out() -> None:
    nvml = FakeNvml([a100(thresholds={}, numa_node=-1, gsp_mode=None, gsp_version=None)])
    nvml.fail("nvmlDeviceGetBrand", NVMLError_NotSupported)
    nvml.fail("nvmlDeviceGetEccMode", NVMLError_NotSupported)
    gpu = make_reader(nvml).read()[0]
    assert gpu.temperature_threshold_slowdown is None
    assert gpu.temperature_threshold_shutdown is None
    assert gpu.numa_node_id is None
    assert gpu.gsp_firmware_mode is None
    assert gpu.gsp_firmware_version is None
    assert "Brand" not in gpu.detail
    assert "ecc_mode_current" not in gpu.detail


def test_static_facts_are_read_once_and_live_values_every_read() -> None:
    nvml = two_gpus()
    reader = make_reader(nvml)
    for _ in range(3):
        reader.read()
    reader.read_processes()
    once_per_device = (
        "nvmlDeviceGetHandleByIndex",
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetBrand",
        "nvmlDeviceGetArchitecture",
        "nvmlDeviceGetVbiosVersion",
        "nvmlDeviceGetNumaNodeId",
        "nvmlDeviceGetGspFirmwareMode",
        "nvmlDeviceGetGspFirmwareVersion",
        "nvmlDeviceGetPowerManagementLimitConstraints",
        "nvmlDeviceGetMaxPcieLinkGeneration",
        "nvmlDeviceGetEccMode",
        "nvmlDeviceGetMigMode",
    )
    assert {name: nvml.calls[name] for name in once_per_device} == dict.fromkeys(once_per_device, 2)
    assert nvml.calls["nvmlDeviceGetTemperatureThreshold"] == 2 * 4
    assert nvml.calls["nvmlSystemGetDriverVersion"] == 1
    assert nvml.calls["nvmlSystemGetCudaDriverVersion_v2"] == 1
    assert nvml.calls["nvmlDeviceGetUtilizationRates"] == 2 * 3
    assert nvml.calls["nvmlDeviceGetPowerUsage"] == 2 * 3
    # The memory info is read once for the static total, then on each read.
    assert nvml.calls["nvmlDeviceGetMemoryInfo"] == 2 + 2 * 3


def test_calls_a_device_cannot_answer_are_not_asked_again() -> None:
    nvml = two_gpus()
    reader = make_reader(nvml)
    for _ in range(3):
        reader.read()
    # Neither board has a tachometer: asked on the first read only.
    assert nvml.calls["nvmlDeviceGetFanSpeedRPM"] == 2
    # The A100 has no NvLink (one probe); the H100 stops at the first missing link
    # each read, and asks each active link's far end once.
    assert nvml.calls["nvmlDeviceGetNvLinkState"] == 1 + 3 * 6
    assert nvml.calls["nvmlDeviceGetNvLinkRemoteDeviceType"] == 4


def test_nvml_init_runs_once_across_readers() -> None:
    nvml = two_gpus()
    first = NvidiaReader.probe(hostname="node1", clock=lambda: NOW, nvml=nvml)
    second = make_reader(nvml)
    assert first is not None
    first.read()
    second.read()
    first.read_processes()
    assert nvml.calls["nvmlInit"] == 1


@pytest.mark.parametrize("error", [NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded])
def test_probe_is_none_when_nvml_cannot_start(error: type) -> None:
    nvml = two_gpus(init_error=error)
    assert NvidiaReader.probe(hostname="node1", clock=lambda: NOW, nvml=nvml) is None


def test_probe_is_none_without_devices() -> None:
    nvml = FakeNvml([])
    assert NvidiaReader.probe(hostname="node1", clock=lambda: NOW, nvml=nvml) is None


def test_probe_returns_a_working_reader() -> None:
    reader = NvidiaReader.probe(hostname="node1", clock=lambda: NOW, nvml=two_gpus())
    assert reader is not None
    assert reader.name == "nvidia"
    assert [gpu.uuid for gpu in reader.read()] == ["GPU-a100", "GPU-h100"]


def test_read_raises_read_error_when_devices_cannot_be_listed() -> None:
    nvml = two_gpus()
    reader = make_reader(nvml)
    nvml.fail("nvmlDeviceGetCount", NVMLError_DriverNotLoaded)
    with pytest.raises(ReadError) as caught:
        reader.read()
    assert isinstance(caught.value.__cause__, NVMLError_DriverNotLoaded)
    with pytest.raises(ReadError):
        reader.read_processes()


def test_read_raises_read_error_when_init_fails() -> None:
    reader = make_reader(two_gpus(init_error=NVMLError_DriverNotLoaded))
    with pytest.raises(ReadError):
        reader.read()


def test_a_device_that_cannot_be_opened_is_skipped_and_retried() -> None:
    nvml = two_gpus()
    nvml.fail("nvmlDeviceGetHandleByIndex", NVMLError_NotFound, device=0)
    reader = make_reader(nvml)
    assert [gpu.uuid for gpu in reader.read()] == ["GPU-h100"]
    nvml.heal("nvmlDeviceGetHandleByIndex", device=0)
    assert [gpu.uuid for gpu in reader.read()] == ["GPU-a100", "GPU-h100"]


def test_fan_rpm_is_typed_never_in_detail() -> None:
    # A live reading in `detail` would start a new all_smi_gpu_info series at each step.
    gpu = make_reader(FakeNvml([a100(fan_rpm=1450, fan_percent=40)])).read()[0]
    assert gpu.fan_speed_rpm == 1450
    assert "Fan Speed" not in gpu.detail


def test_fan_rpm_is_clamped() -> None:
    gpu = make_reader(FakeNvml([a100(fan_rpm=250_000)])).read()[0]
    assert gpu.fan_speed_rpm == MAX_GPU_FAN_RPM


def test_fan_duty_cycle_is_no_rpm() -> None:
    gpu = make_reader(FakeNvml([a100(fan_percent=40)])).read()[0]
    assert gpu.fan_speed_rpm is None
    assert "Fan Speed" not in gpu.detail


def test_unknown_performance_state_is_null() -> None:
    gpu = make_reader(FakeNvml([a100(pstate=32)])).read()[0]
    assert gpu.performance_state is None
    assert gpu.detail["performance_state"] == "Unknown"  # nvml-wrapper's variant for 32


def test_detail_is_read_once_while_live_values_move() -> None:
    """The first read's P-state, link and power limit stay in `detail`, as in all-smi."""
    nvml = FakeNvml([a100(pstate=0, pcie_gen=4, pcie_width=16, fan_rpm=1200)])
    reader = make_reader(nvml)
    first = reader.read()[0]
    device = nvml.devices[0]
    device.pstate, device.pcie_gen, device.pcie_width = 8, 1, 4
    device.fan_rpm, device.power_limit_mw = 3100, 250_000
    second = reader.read()[0]
    assert second.detail == first.detail
    assert (first.performance_state, second.performance_state) == (0, 8)
    assert (second.pcie_link_generation, second.pcie_link_width) == (1, 4)
    assert (first.fan_speed_rpm, second.fan_speed_rpm) == (1200, 3100)
    assert (second.detail["PCIe Generation"], second.detail["PCIe Width"]) == ("4", "x16")
    assert second.detail["power_limit_current"] == "400.00"


def test_vbios_text_is_written_as_rust_debug_does() -> None:
    nvml = FakeNvml([a100(vbios='96.00.A5"\\x')])
    assert make_reader(nvml).read()[0].detail["vbios_version"] == '"96.00.A5\\"\\\\x"'


def test_old_nvidia_ml_py_bytes_and_missing_functions() -> None:
    class OldNvml(FakeNvml):
        nvmlDeviceGetGspFirmwareMode = None
        nvmlDeviceGetFanSpeedRPM = None
        nvmlSystemGetCudaDriverVersion_v2 = None
        nvmlMemory_v2 = None

    nvml = OldNvml([a100(fan_rpm=1450, fan_percent=35)], strings_as_bytes=True)
    gpu = make_reader(nvml).read()[0]
    assert (gpu.name, gpu.uuid) == ("NVIDIA A100-SXM4-80GB", "GPU-a100")
    assert gpu.detail["vbios_version"] == '"92.00.45.00.03"'
    assert gpu.detail["Driver Version"] == "550.54.15"
    assert gpu.detail["CUDA Version"] == "12.4"
    assert gpu.gsp_firmware_mode is None
    assert gpu.fan_speed_rpm is None
    # Without the v2 memory struct, the driver's reservation counts as used.
    assert gpu.used_memory == 10 * GIB + 512 * 1024**2


def test_missing_versions_are_written_as_all_smi_writes_them() -> None:
    nvml = FakeNvml([a100()], cuda_version=None)
    nvml.fail("nvmlSystemGetDriverVersion", NVMLError_FunctionNotFound)
    detail = make_reader(nvml).read()[0].detail
    assert {
        k: detail[k] for k in ("Driver Version", "CUDA Version", "lib_name", "lib_version")
    } == {
        "Driver Version": "Unknown",
        "CUDA Version": "0.0",
        "lib_name": "CUDA",
        "lib_version": "0.0",
    }


def test_cuda_versions_are_written_major_dot_minor() -> None:
    for raw, text in ((12040, "12.4"), (11080, "11.8"), (13000, "13.0"), (12090, "12.9")):
        gpu = make_reader(FakeNvml([a100()], cuda_version=raw)).read()[0]
        assert gpu.detail["CUDA Version"] == text


def test_unified_memory_gpu_reports_host_memory(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text(
        "MemTotal:       131072000 kB\nMemFree:         1000 kB\nMemAvailable:   100000000 kB\n"
    )
    spark = FakeDevice(
        name="NVIDIA GB10", uuid="GPU-gb10", architecture=10, memory_total=None, vbios=None
    )
    gpu = make_reader(FakeNvml([spark]), procfs=tmp_path).read()[0]
    assert gpu.total_memory == 131_072_000 * 1024
    assert gpu.used_memory == 31_072_000 * 1024
    assert gpu.detail["Memory Type"] == "Unified"
    assert gpu.detail["Interconnect"] == "Integrated"
    assert not {"PCIe Generation", "pcie_gen_current", "pcie_gen_max"} & gpu.detail.keys()


def with_processes() -> FakeNvml:
    first = a100(
        compute_processes=[FakeProcess(4242, 2 * GIB), FakeProcess(0, GIB)],
        graphics_processes=[FakeProcess(4242, GIB), FakeProcess(777, None)],
        process_samples=[
            FakeSample(4242, 1_000, 30),
            FakeSample(4242, 2_000, 55),
            FakeSample(777, 1_500, 5),
        ],
    )
    second = h100(compute_processes=[FakeProcess(4242, 40 * GIB)], process_samples=None)
    return FakeNvml([first, second])


def test_processes_from_both_lists_deduplicated_per_device() -> None:
    reader = make_reader(with_processes())
    assert reader.read_processes() == [
        GpuProcess(
            device_id=0, device_uuid="GPU-a100", pid=777, used_memory=0, gpu_utilization=5.0
        ),
        GpuProcess(
            device_id=0, device_uuid="GPU-a100", pid=4242, used_memory=2 * GIB, gpu_utilization=55.0
        ),
        # The H100 keeps no per-process samples: utilization reads 0.
        GpuProcess(
            device_id=1, device_uuid="GPU-h100", pid=4242, used_memory=40 * GIB, gpu_utilization=0.0
        ),
    ]


def test_process_utilization_asks_only_for_new_samples() -> None:
    nvml = with_processes()
    reader = make_reader(nvml)
    reader.read_processes()
    assert nvml.calls["nvmlDeviceGetProcessUtilization"] == 2
    nvml.devices[0].process_samples.append(FakeSample(777, 3_000, 80))
    again = {p.pid: p.gpu_utilization for p in reader.read_processes() if p.device_id == 0}
    assert nvml.last_process_utilization_since == 2_000
    # Nothing new for 4242 since the last call: it did not run in that window.
    assert again == {777: 80.0, 4242: 0.0}
    # The H100 said NotSupported once and is not asked again.
    assert nvml.calls["nvmlDeviceGetProcessUtilization"] == 3


def test_current_nvidia_ml_py_uses_the_v3_entry_points() -> None:
    nvml = with_processes()
    make_reader(nvml).read_processes()
    assert nvml.calls["nvmlDeviceGetComputeRunningProcesses_v3"] == 2
    assert nvml.calls["nvmlDeviceGetGraphicsRunningProcesses_v3"] == 2
    assert nvml.calls["nvmlDeviceGetComputeRunningProcesses"] == 0


def test_process_lists_that_fail_give_no_processes_for_that_device() -> None:
    nvml = with_processes()
    nvml.fail("nvmlDeviceGetComputeRunningProcesses_v3", NVMLError_NoPermission, device=1)
    processes = make_reader(nvml).read_processes()
    assert {p.device_id for p in processes} == {0}


def test_processes_on_a_driver_without_the_v3_entry_points() -> None:
    class OldDriverNvml(FakeNvml):
        def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: FakeHandle) -> list[object]:
            self._check("nvmlDeviceGetComputeRunningProcesses_v3", handle.index)
            raise NVMLError_FunctionNotFound()

        def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: FakeHandle) -> list[object]:
            return self.running_processes("nvmlDeviceGetComputeRunningProcesses_v2", handle)

        def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[object]:
            # What pynvml's unversioned wrapper raises on such a driver.
            raise RuntimeError("NVMLLibraryMismatchError")

    nvml = OldDriverNvml([a100(compute_processes=[FakeProcess(4242, GIB)])])
    reader = make_reader(nvml)
    assert [p.pid for p in reader.read_processes()] == [4242]
    reader.read_processes()
    assert nvml.calls["nvmlDeviceGetComputeRunningProcesses_v3"] == 1
    assert nvml.calls["nvmlDeviceGetComputeRunningProcesses_v2"] == 2
