"""Energy accounting: the integration rules, NVML's counter, the state file, the exposition."""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import pytest

from smicast.energy.account import EnergyAccount, nvml_counters
from smicast.energy.meter import MAX_POWER_WATTS, EnergyKey, EnergyMeter, Scope
from smicast.energy.store import STATE_FILE, EnergyStore
from smicast.include import Section
from smicast.prometheus.energy import render_energy
from smicast.readers.nvidia import NvidiaReader
from smicast.readers.setup import DeferredGpuReader
from smicast.schema import ChassisInfo, Snapshot
from smicast.statedir import default_state_dir
from tests.fake_nvml import FakeNvml, NVMLError_NotSupported, a100, h100
from tests.fakes import make_cpu, make_gpu, make_snapshot

GPU = EnergyKey(Scope.GPU, "node1", "GPU-0")
HOST = "mockhost"


def chassis(watts: float | None) -> ChassisInfo:
    return ChassisInfo(
        host_id=HOST,
        hostname=HOST,
        instance=HOST,
        time="2026-04-20 12:00:00",
        total_power_watts=watts,
    )


def frame(gpu_watts: float | None = 250.0, **overrides: Any) -> Snapshot:
    fields: dict[str, Any] = dict(gpus=[make_gpu("A100", power_consumption=gpu_watts)])
    fields.update(overrides)
    return make_snapshot(**fields)


# -- integration rules (all-smi's) -------------------------------------------------------


def feed(meter: EnergyMeter, *samples: tuple[float, float]) -> float:
    for at, watts in samples:
        meter.sample(GPU, at, watts)
    return meter.totals().get(GPU, 0.0)


def test_trapezoid_within_the_gap() -> None:
    assert feed(EnergyMeter(), (0, 100), (5, 200)) == pytest.approx(750.0)


def test_first_sample_adds_nothing() -> None:
    assert feed(EnergyMeter(), (0, 300)) == 0.0


def test_gap_longer_than_10_s_holds_the_last_reading() -> None:
    assert feed(EnergyMeter(), (0, 100), (30, 200)) == pytest.approx(3000.0)
    # exactly 10 s is still within the window: the trapezoid
    assert feed(EnergyMeter(), (0, 100), (10, 200)) == pytest.approx(1500.0)


def test_nan_and_negative_readings_count_as_zero() -> None:
    total = feed(EnergyMeter(), (0, 100), (1, math.nan), (2, -50), (3, 100))
    assert total == pytest.approx(100.0)


def test_impossible_readings_are_clamped() -> None:
    assert feed(EnergyMeter(), (0, 1e308), (1, 0)) == pytest.approx(MAX_POWER_WATTS / 2)
    total = feed(EnergyMeter(), *((t, math.inf if t else 100.0) for t in range(3600)))
    assert math.isfinite(total) and total <= MAX_POWER_WATTS * 3600


def test_duplicate_timestamp_refreshes_the_reading_only() -> None:
    assert feed(EnergyMeter(), (0, 100), (0, 500), (1, 500)) == pytest.approx(500.0)


def test_observe_takes_gpu_cpu_and_chassis_and_skips_missing_power() -> None:
    meter = EnergyMeter()
    snap = frame(
        gpus=[
            make_gpu("A100", power_consumption=200.0),
            make_gpu("H100", power_consumption=-1.0),  # unavailable
            make_gpu("B200", power_consumption=None),
        ],
        cpus=[make_cpu(power_consumption=60.0), make_cpu(power_consumption=40.0)],
        chassis=[chassis(None)],
    )
    meter.observe(snap, 0.0)
    meter.observe(snap, 2.0)
    rows = {(r.key.scope, r.key.device): r for r in meter.rows()}
    assert set(rows) == {(Scope.GPU, "GPU-A100-UUID"), (Scope.CPU, "")}
    assert rows[Scope.GPU, "GPU-A100-UUID"].total_j == pytest.approx(400.0)
    assert rows[Scope.CPU, ""].total_j == pytest.approx(200.0)  # both sockets


# -- NVML's counter ----------------------------------------------------------------------


def test_nvml_counter_is_measured_not_integrated() -> None:
    meter = EnergyMeter()
    meter.sample(GPU, 0.0, 100.0, counter_mj=5_000_000)
    meter.sample(GPU, 3.0, 100.0, counter_mj=5_000_000 + 1_234_567)
    (row,) = meter.rows()
    assert row.total_j == pytest.approx(1234.567)  # the integral would say 300 J
    assert row.measured


def test_nvml_counter_going_backwards_is_a_reset_not_negative_energy() -> None:
    meter = EnergyMeter()
    meter.sample(GPU, 0.0, 100.0, counter_mj=9_000_000)
    meter.sample(GPU, 2.0, 100.0, counter_mj=9_200_000)  # +200 J measured
    meter.sample(GPU, 4.0, 100.0, counter_mj=1_000)  # driver reloaded: integral, 200 J
    meter.sample(GPU, 6.0, 100.0, counter_mj=301_000)  # +300 J from the new baseline
    (row,) = meter.rows()
    assert row.total_j == pytest.approx(700.0)
    assert meter.resets == 1


def test_nvml_counter_jumping_faster_than_possible_is_a_reset() -> None:
    meter = EnergyMeter()
    meter.sample(GPU, 0.0, 100.0, counter_mj=0)
    meter.sample(GPU, 1.0, 100.0, counter_mj=10**15)
    assert meter.totals()[GPU] == pytest.approx(100.0)
    assert meter.resets == 1


def test_nvml_counter_measures_a_gpu_without_a_power_reading() -> None:
    meter = EnergyMeter()
    snap = frame(gpus=[make_gpu("A100", power_consumption=-1.0)])
    meter.observe(snap, 0.0, {"GPU-A100-UUID": 1_000})
    meter.observe(snap, 1.0, {"GPU-A100-UUID": 251_000})
    (row,) = [r for r in meter.rows() if r.key.scope is Scope.GPU]
    assert row.total_j == pytest.approx(250.0) and row.measured


def make_reader(nvml: FakeNvml) -> NvidiaReader:
    return NvidiaReader(nvml, hostname="node1", clock=lambda: 1_776_686_400.0)


def test_nvidia_reader_keeps_nvml_counters_beside_the_snapshot() -> None:
    nvml = FakeNvml([a100(energy_mj=7_000_000), h100(energy_mj=None)])
    reader = make_reader(nvml)
    gpus = reader.read()
    assert reader.energy_counters_mj() == {"GPU-a100": 7_000_000}
    # Not in the Snapshot: the GPU records are all-smi's fields only.
    assert all(not hasattr(g, "energy") for g in gpus)
    nvml.devices[0].energy_mj = 7_500_000
    reader.read()
    assert reader.energy_counters_mj() == {"GPU-a100": 7_500_000}
    # NotSupported on the H100 is asked once, then remembered.
    assert nvml.calls["nvmlDeviceGetTotalEnergyConsumption"] == 4 - 1


def test_nvml_counter_path_through_fake_nvml() -> None:
    nvml = FakeNvml([a100(energy_mj=1_000_000, power_mw=100_000), h100(energy_mj=None)])
    reader = make_reader(nvml)
    deferred = DeferredGpuReader("nvidia", Section.GPU, lambda: reader)
    account = EnergyAccount(None, counters=lambda: nvml_counters([deferred]))
    for step, at in enumerate((0.0, 3.0, 6.0)):
        nvml.devices[0].energy_mj = 1_000_000 + step * 2_400_000  # 800 W measured
        account.observe(Snapshot(timestamp="t", hostname="node1", gpus=list(deferred.read())), at)
    rows = {r.key.device: r for r in account.rows()}
    assert rows["GPU-a100"].total_j == pytest.approx(4800.0)  # the 100 W reading would give 600
    assert rows["GPU-a100"].measured
    assert rows["GPU-h100"].total_j == pytest.approx(612.345 * 6)  # integrated
    assert not rows["GPU-h100"].measured


def test_fake_nvml_energy_call_matches_pynvml() -> None:
    pynvml = pytest.importorskip("pynvml")
    real = inspect.signature(pynvml.nvmlDeviceGetTotalEnergyConsumption)
    fake = inspect.signature(FakeNvml.nvmlDeviceGetTotalEnergyConsumption)
    assert list(real.parameters) == list(fake.parameters)[1:]
    with pytest.raises(NVMLError_NotSupported):
        nvml = FakeNvml([a100()])
        nvml.nvmlDeviceGetTotalEnergyConsumption(nvml.nvmlDeviceGetHandleByIndex(0))


# -- the exposition ----------------------------------------------------------------------


def test_exposition_matches_all_smi() -> None:
    meter = EnergyMeter()
    snap = frame(
        gpus=[make_gpu("A100", power_consumption=-1.0), make_gpu("H100", power_consumption=300.0)],
        cpus=[make_cpu(power_consumption=None)],
        chassis=[chassis(450.5)],
    )
    meter.observe(snap, 0.0)
    meter.observe(snap, 10.0)
    assert render_energy(meter.rows()) == (
        "# HELP all_smi_energy_consumed_joules_total Cumulative energy consumption in Joules.\n"
        "# TYPE all_smi_energy_consumed_joules_total counter\n"
        'all_smi_energy_consumed_joules_total{host="mockhost", scope="gpu", gpu_index="1", '
        'gpu_uuid="GPU-H100-UUID"} 3000.000\n'
        'all_smi_energy_consumed_joules_total{host="mockhost", scope="chassis"} 4505.000\n'
    )


def test_no_family_before_any_energy() -> None:
    meter = EnergyMeter()
    meter.observe(frame(), 0.0)  # one reading: nothing integrated yet
    assert render_energy(meter.rows()) == ""


# -- the state file ----------------------------------------------------------------------


def test_restart_carries_totals_over(tmp_path: Path) -> None:
    first = EnergyAccount(EnergyStore(tmp_path, HOST))
    first.observe(frame(200.0), 0.0)
    first.observe(frame(200.0), 5.0)
    assert first.close()
    saved = tmp_path / STATE_FILE
    assert saved.stat().st_mode & 0o777 == 0o600

    second = EnergyAccount(EnergyStore(tmp_path, HOST))
    assert second.rows() == []  # carried over, but not seen yet in this process
    second.observe(frame(200.0), 100.0)
    second.observe(frame(200.0), 101.0)
    (gpu,) = [r for r in second.rows() if r.key.scope is Scope.GPU]
    assert gpu.total_j == pytest.approx(1000.0 + 200.0)
    assert gpu.session_j == pytest.approx(200.0)


def test_totals_of_devices_not_seen_are_kept(tmp_path: Path) -> None:
    store = EnergyStore(tmp_path, HOST)
    store.save({EnergyKey(Scope.GPU, HOST, "GPU-gone"): 42.0})
    account = EnergyAccount(store)
    account.observe(frame(), 0.0)
    account.observe(frame(), 1.0)
    account.close()
    assert EnergyStore(tmp_path, HOST).load()[EnergyKey(Scope.GPU, HOST, "GPU-gone")] == 42.0


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "not a JSON object"),
        (b'{"format": "smicast-energy", "version": 1, "host": "mockhost", "saved', "not a JSON"),
        (b"\x00\xff garbage", "not a JSON object"),
        (b'{"format": "other"}', "not an smicast energy file"),
        (b'{"format": "smicast-energy", "version": 2, "host": "mockhost"}', "format version 2"),
        (b'{"format": "smicast-energy", "version": 1, "host": "elsewhere"}', "written on host"),
        (
            b'{"format": "smicast-energy", "version": 1, "host": "mockhost", "saved_at": "x",'
            b' "counters": [{"scope": "gpu", "uuid": "G", "joules": -5}]}',
            "corrupt",
        ),
        (
            b'{"format": "smicast-energy", "version": 1, "host": "mockhost", "saved_at": "x",'
            b' "counters": [{"scope": "cpu", "uuid": "G", "joules": 5}]}',
            "corrupt",
        ),
    ],
)
def test_bad_state_file_starts_from_zero_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, why: str
) -> None:
    (tmp_path / STATE_FILE).write_bytes(content)
    with caplog.at_level(logging.WARNING, "smicast.energy"):
        account = EnergyAccount(EnergyStore(tmp_path, HOST))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and why in warnings[0], warnings
    account.observe(frame(100.0), 0.0)
    account.observe(frame(100.0), 1.0)
    assert account.close()  # and the next save replaces the bad file
    assert EnergyStore(tmp_path, HOST).load()[EnergyKey(Scope.GPU, HOST, "GPU-A100-UUID")] == 100


def test_missing_state_file_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "smicast.energy"):
        EnergyAccount(EnergyStore(tmp_path / "new", HOST))
    assert ["no saved totals" in r.getMessage() for r in caplog.records] == [True]


def test_state_file_is_never_read_or_written_through_a_symlink(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    (tmp_path / STATE_FILE).symlink_to(target)
    store = EnergyStore(tmp_path, HOST)
    with caplog.at_level(logging.WARNING, "smicast.energy"):
        assert store.load() == {}
        assert not store.save({EnergyKey(Scope.CPU, HOST): 1.0})
        assert not store.save({EnergyKey(Scope.CPU, HOST): 2.0})
    assert target.read_text() == "{}"
    assert len([r for r in caplog.records if "cannot save" in r.getMessage()]) == 1


def test_unwritable_state_dir_keeps_the_agent_going(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    account = EnergyAccount(EnergyStore(blocker / "state", HOST))
    account.observe(frame(), 0.0)
    account.observe(frame(), 1.0)
    assert not account.close()
    assert account.rows()


def test_oversized_state_file_is_ignored(tmp_path: Path) -> None:
    with (tmp_path / STATE_FILE).open("wb") as f:
        f.truncate(5 * 1024 * 1024)
    assert EnergyStore(tmp_path, HOST).load() == {}


def test_state_file_format(tmp_path: Path) -> None:
    EnergyStore(tmp_path, HOST, clock=lambda: 1_776_686_400.0).save(
        {EnergyKey(Scope.GPU, HOST, "GPU-1"): 1.23456, EnergyKey(Scope.CHASSIS, HOST): 9.0}
    )
    assert json.loads((tmp_path / STATE_FILE).read_text()) == {
        "format": "smicast-energy",
        "version": 1,
        "host": HOST,
        "saved_at": "2026-04-20T12:00:00Z",
        "counters": [
            {"scope": "chassis", "joules": 9.0, "uuid": ""},
            {"scope": "gpu", "joules": 1.235, "uuid": "GPU-1"},
        ],
    }


def test_periodic_save_runs_off_the_caller_and_one_at_a_time(tmp_path: Path) -> None:
    spawned: list[Any] = []
    account = EnergyAccount(EnergyStore(tmp_path, HOST), save_every_s=60.0, spawn=spawned.append)
    for at in range(0, 125, 5):
        account.observe(frame(), float(at))
        if at == 60:
            assert len(spawned) == 1  # due, handed to a thread, not yet run
    assert len(spawned) == 1  # still in flight at 120 s: no second one
    spawned.pop()()
    assert (tmp_path / STATE_FILE).exists()
    account.observe(frame(), 125.0)
    assert len(spawned) == 1  # the 120 s deadline had passed


# -- the state directory -----------------------------------------------------------------


def test_default_state_dir() -> None:
    home = Path("/home/u")
    assert default_state_dir({}, euid=0, home=home) == Path("/var/lib/smicast")
    assert default_state_dir({}, euid=1000, home=home) == home / ".local/state/smicast"
    xdg = {"XDG_STATE_HOME": "/xdg"}
    assert default_state_dir(xdg, euid=1000, home=home) == Path("/xdg/smicast")
    assert default_state_dir({"XDG_STATE_HOME": "rel"}, euid=1000, home=home) == (
        home / ".local/state/smicast"
    )
    systemd = {"STATE_DIRECTORY": "/var/lib/smicast:/other"}
    assert default_state_dir(systemd, euid=61234, home=home) == Path("/var/lib/smicast")
    explicit = {"SMICAST_STATE_DIR": "/srv/s", **xdg, **systemd}
    assert default_state_dir(explicit, euid=0, home=home) == Path("/srv/s")
    assert os.environ.get("SMICAST_STATE_DIR")  # tests never write the real default


def test_a_gpu_without_a_usable_uuid_is_counted_but_not_saved(tmp_path: Path) -> None:
    store = EnergyStore(tmp_path, HOST)
    assert store.save(
        {
            EnergyKey(Scope.GPU, HOST, ""): 5.0,
            EnergyKey(Scope.GPU, HOST, "x" * 300): 6.0,
            EnergyKey(Scope.GPU, HOST, "GPU-ok"): 7.0,
        }
    )
    assert store.load() == {EnergyKey(Scope.GPU, HOST, "GPU-ok"): 7.0}


def test_session_sum_of_a_scope_over_hosts_equals_the_rows_sum() -> None:
    meter = EnergyMeter(seed={EnergyKey(Scope.GPU, "a", "GPU-old"): 5_000.0})
    for step in range(4):
        for host in ("a", "b", "c"):
            gpus = [
                make_gpu("A100", hostname=host, uuid=f"{host}-{i}", power_consumption=100.0 * i)
                for i in range(3)
            ]
            meter.observe(make_snapshot(hostname=host, gpus=gpus, cpus=[make_cpu()]), step * 1.5)
    hosts = {"a", "c"}
    by_rows = sum(
        r.session_j for r in meter.rows() if r.key.scope is Scope.GPU and r.key.host in hosts
    )
    assert by_rows > 0
    assert meter.session_j(Scope.GPU, hosts) == pytest.approx(by_rows, rel=1e-12)
    assert meter.session_j(Scope.GPU, set()) == 0
    assert meter.session_j(Scope.CHASSIS, {"a", "b", "c"}) == 0
