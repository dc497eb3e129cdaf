"""The parts `SimulatedReader` imitates: names, limits, vendor detail keys and workloads.

Detail keys follow what all-smi's own reader for each vendor writes (and what its
Prometheus exporters read back), so a simulated node exercises the same labels as
real hardware. Numbers are those of the shipping parts; the power and temperature
model is all-smi's mock server's.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from smicast.schema import NvLinkRemoteDevice

MIB: Final = 1 << 20
GIB: Final = 1 << 30

# A detail map still to be completed with one read's values:
# (static detail, power W, temperature °C, clock MHz, used bytes, total bytes, reads so far).
LiveDetail = Callable[[dict[str, str], float, int, int, int, int, int], dict[str, str]]


@dataclass(frozen=True, slots=True)
class Workload:
    """A kind of job seen on accelerators; `command` is a `str.format` template."""

    process_name: str
    command: str
    users: tuple[str, ...]
    cpu_percent: tuple[float, float]  # while the device is fully busy
    rss_gib: tuple[float, float]
    threads: tuple[int, int]
    memory_weight: tuple[float, float]  # share of the device memory among its processes
    service: bool = False  # started by the init system (ppid 1) rather than a shell


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    device_type: str
    total_memory: int
    power_base_w: tuple[float, float]
    power_per_util_w: tuple[float, float]
    power_per_mem_pct_w: tuple[float, float]
    power_bias_w: float
    power_noise_w: float
    power_min_w: float
    power_max_w: float
    clock_idle_mhz: int  # 0: the vendor tool reports no clock and neither do we
    clock_busy_mhz: int
    clock_noise_mhz: float
    clock_min_mhz: int
    clock_max_mhz: int
    make_uuid: Callable[[random.Random, int], str]
    static_detail: Callable[[str, int], dict[str, str]]  # (uuid, index)
    busy_workloads: tuple[Workload, ...]
    idle_workloads: tuple[Workload, ...]
    live_detail: LiveDetail | None = None
    nvidia: bool = False  # thresholds, P-states, NUMA, GSP, NvLink and GPM
    pcie_link: tuple[int, int] | None = None  # (max generation, lanes); trains down at idle


TRAINERS: Final = ("jkim", "mchen", "asato", "priya", "dlopez", "hwang", "rnair")
SERVICE_USERS: Final = ("svc-infer", "triton")
MODELS: Final = ("llama-3.1-8b", "llama-3.1-70b", "qwen2.5-32b", "mistral-7b", "gemma-2-27b")
HF_MODELS: Final = (
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
)
CONFIGS: Final = ("llama3-8b-sft", "llama3-70b-lora", "qwen2.5-32b-dpo", "mixtral-pretrain")


def command_fields(rng: random.Random, user: str) -> dict[str, object]:
    """Values for every placeholder a workload template may use."""
    return {
        "user": user,
        "model": rng.choice(MODELS),
        "hf_model": rng.choice(HF_MODELS),
        "cfg": rng.choice(CONFIGS),
        "bs": rng.choice((8, 16, 32, 64)),
        "lr": rng.choice(("1e-4", "2e-5", "3e-4")),
        "epochs": rng.randint(1, 10),
        "run": f"run-{rng.randrange(16**6):06x}",
        "tp": rng.choice((1, 2, 4, 8)),
        "ctx": rng.choice((8192, 32768, 131072)),
        "port": rng.choice((8000, 8001, 8080, 30000)),
        "step": rng.randrange(1000, 200_000, 1000),
        "kernel": uuid.UUID(int=rng.getrandbits(128)),
    }


_TRAIN_CMD: Final = (
    "python train.py --model {model} --batch-size {bs} --lr {lr} --epochs {epochs}"
    " --output-dir /scratch/{user}/runs/{run}"
)
_TORCHRUN_CMD: Final = (
    "/usr/bin/python3 /usr/local/bin/torchrun --nproc_per_node=8 --master_port=29500"
    " finetune.py --config configs/{cfg}.yaml"
)
_VLLM_CMD: Final = (
    "/usr/bin/python3 /usr/local/bin/vllm serve {hf_model} --tensor-parallel-size {tp}"
    " --max-model-len {ctx} --gpu-memory-utilization 0.90 --port {port}"
)
_EVAL_CMD: Final = (
    "python eval.py --checkpoint /scratch/{user}/ckpt/step_{step}.pt --tasks mmlu,gsm8k"
    " --batch-size {bs}"
)
_JUPYTER_CMD: Final = (
    "/opt/conda/bin/python -m ipykernel_launcher"
    " -f /home/{user}/.local/share/jupyter/runtime/kernel-{kernel}.json"
)
_GAUDI_CMD: Final = (
    "python3 run_clm.py --model_name_or_path {hf_model} --gaudi_config_name Habana/llama"
    " --use_habana --use_lazy_mode --per_device_train_batch_size {bs}"
    " --output_dir /scratch/{user}/runs/{run}"
)
_TT_CMD: Final = (
    "python3 -m pytest models/demos/wormhole/llama31_8b/demo/demo.py -k performance-batch-{bs}"
)

# Fields in order: comm, command, users, cpu %, rss GiB, threads, memory weight, service.
_TRAIN = Workload("python", _TRAIN_CMD, TRAINERS, (95, 180), (12, 48), (40, 120), (3, 6))
_TORCHRUN = Workload("torchrun", _TORCHRUN_CMD, TRAINERS, (100, 250), (20, 64), (60, 180), (4, 7))
_VLLM = Workload("vllm", _VLLM_CMD, SERVICE_USERS, (60, 140), (18, 40), (90, 260), (6, 9), True)
_EVAL = Workload("python", _EVAL_CMD, TRAINERS, (80, 110), (6, 20), (20, 60), (1, 3))
_JUPYTER = Workload("python", _JUPYTER_CMD, TRAINERS, (0.5, 8), (2, 9), (8, 24), (0.5, 2))
_GAUDI_TRAIN = Workload("python3", _GAUDI_CMD, TRAINERS, (90, 200), (16, 56), (50, 150), (3, 6))
_TT_DEMO = Workload("python3", _TT_CMD, TRAINERS, (90, 130), (8, 24), (30, 90), (2, 5))


def _nvidia_uuid(rng: random.Random, index: int) -> str:
    return f"GPU-{uuid.UUID(int=rng.getrandbits(128))}"


# PCI functions of the eight OAM sockets of an MI300X platform; all-smi names AMD GPUs by them.
_MI300X_BUSES: Final = (0x05, 0x26, 0x46, 0x65, 0x85, 0xA6, 0xC6, 0xE5)


def _amd_pci_address(index: int) -> str:
    return f"{index // 8:04x}:{_MI300X_BUSES[index % 8]:02x}:00.0"


def _amd_uuid(rng: random.Random, index: int) -> str:
    return f"GPU-{_amd_pci_address(index)}"


def _gaudi_uuid(rng: random.Random, index: int) -> str:
    serial = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789") for _ in range(6))
    return f"01P4-HL3250A0-18-{serial}-{rng.randint(22, 25)}-{rng.randint(1, 52):02d}-00"


def _tenstorrent_uuid(rng: random.Random, index: int) -> str:
    return f"0100014{rng.getrandbits(36):09x}"


_NV_DRIVER: Final = "570.124.06"
_NV_CUDA: Final = "12.8"


def _h200_detail(uuid_text: str, index: int) -> dict[str, str]:
    # all-smi's NVIDIA keys and formats (nvml-wrapper Debug names, `x16`, a quoted VBIOS
    # string); the reader adds the P-state and link generation seen at start.
    return {
        "Driver Version": _NV_DRIVER,
        "CUDA Version": _NV_CUDA,
        "lib_name": "CUDA",
        "lib_version": _NV_CUDA,
        "Brand": "Nvidia",
        "architecture": "Hopper",
        "compute_mode": "Default",
        "vbios_version": '"96.00.A5.00.01"',
        "PCIe Width": "x16",
        "pcie_gen_max": "5",
        "pcie_width_max": "16",
        "clock_graphics_max": "1980",
        "clock_memory_max": "3201",
        "power_limit_current": "700.00",
        "power_limit_default": "700.00",
        "power_limit_min": "200.00",
        "power_limit_max": "700.00",
        "ecc_mode_current": "Enabled",
        "mig_mode_current": "0",
    }


def _mi300x_detail(uuid_text: str, index: int) -> dict[str, str]:
    return {
        "Device Name": "AMD Instinct MI300X",
        "PCI Bus": _amd_pci_address(index),
        "ROCm Version": "6.3.1",
        "lib_name": "ROCm",
        "lib_version": "6.3.1",
        "Driver Version": "3.57.0",
        "Device ID": "0x74a1",
        "Revision ID": "0x00",
        "ASIC Name": "GFX942",
        "VBIOS Version": "113-M3000100-102",
        "VBIOS Date": "2024/02/28 10:35",
        "Power Cap": "750 W",
        "Power Cap (Min)": "0 W",
        "Power Cap (Max)": "750 W",
        "Max GPU Link": "Gen5 x16",
        "Max System Link": "Gen5 x16",
        "Min DPM Link": "Gen1 x16",
        "Max DPM Link": "Gen5 x16",
    }


def _gaudi3_detail(uuid_text: str, index: int) -> dict[str, str]:
    return {
        "Device Index": str(index),
        "Internal Name": "HL-325L",
        "Max Power": "900 W",
        "Total Memory": "131072 MiB",
        "firmware": "hl-gaudi3-1.19.1-fw-57.2.2.0",
        "Driver Version": "1.19.1-6f47ddd",
        "lib_name": "Habana",
        "lib_version": "1.19.1-6f47ddd",
        "power_limit_max": "900",
    }


def _n300_detail(uuid_text: str, index: int) -> dict[str, str]:
    return {
        "board_type": "n300",
        "board_id": uuid_text,
        "firmware": "80.15.0.0",
        "arc_fw_version": "2.32.0.0",
        "eth_fw_version": "7.0.0",
        "ddr_fw_version": "2.1.0",
        "spibootrom_fw_version": "3.13.0",
        "fw_date": "2025-01-15",
        "lib_name": "Luwen",
        "lib_version": "2.32.0.0",
        "tdp_limit": "300",
        "pcie_address": f"0000:{0x21 + index:02x}:00.0",
        "pcie_link_gen": "Gen4",
        "pcie_link_width": "x16",
        "axiclk_mhz": "900",
        "arcclk_mhz": "540",
    }


def _n300_live(
    static: dict[str, str],
    power_w: float,
    temp_c: int,
    clock_mhz: int,
    used: int,
    total: int,
    reads: int,
) -> dict[str, str]:
    detail = dict(static)
    voltage = 0.72 + clock_mhz * 0.0002
    detail["aiclk_mhz"] = str(clock_mhz)
    detail["asic_temperature"] = f"{temp_c:.1f}"
    detail["vreg_temperature"] = f"{temp_c - 6:.1f}"
    detail["voltage"] = f"{voltage:.3f}"
    detail["current"] = f"{power_w / voltage:.2f}"
    detail["power_watts"] = f"{power_w:.1f}"
    detail["heartbeat"] = str(reads)
    return detail


PARTS: Final[dict[str, Part]] = {
    "nvidia": Part(
        name="NVIDIA H200 141GB HBM3",
        device_type="GPU",
        total_memory=143_771 * MIB,
        power_base_w=(80.0, 120.0),
        power_per_util_w=(4.0, 6.0),
        power_per_mem_pct_w=(1.0, 2.0),
        power_bias_w=30.0,
        power_noise_w=15.0,
        power_min_w=80.0,
        power_max_w=700.0,
        clock_idle_mhz=1200,
        clock_busy_mhz=1800,
        clock_noise_mhz=100.0,
        clock_min_mhz=1000,
        clock_max_mhz=1980,
        make_uuid=_nvidia_uuid,
        static_detail=_h200_detail,
        busy_workloads=(_TRAIN, _TORCHRUN, _VLLM, _VLLM, _EVAL),
        idle_workloads=(_JUPYTER, _JUPYTER, _EVAL),
        nvidia=True,
        pcie_link=(5, 16),
    ),
    "amd": Part(
        name="AMD Instinct MI300X 192GB HBM3",
        device_type="GPU",
        total_memory=196_592 * MIB,
        power_base_w=(120.0, 160.0),
        power_per_util_w=(4.5, 5.5),
        power_per_mem_pct_w=(0.5, 1.0),
        power_bias_w=30.0,
        power_noise_w=15.0,
        power_min_w=100.0,
        power_max_w=750.0,
        clock_idle_mhz=1300,
        clock_busy_mhz=2000,
        clock_noise_mhz=100.0,
        clock_min_mhz=1000,
        clock_max_mhz=2100,
        make_uuid=_amd_uuid,
        static_detail=_mi300x_detail,
        busy_workloads=(_TRAIN, _TORCHRUN, _VLLM, _VLLM, _EVAL),
        idle_workloads=(_JUPYTER, _JUPYTER, _EVAL),
        pcie_link=(5, 16),
    ),
    "gaudi": Part(
        name="Intel Gaudi 3",
        device_type="NPU",
        total_memory=131_072 * MIB,
        power_base_w=(150.0, 200.0),
        power_per_util_w=(5.0, 6.5),
        power_per_mem_pct_w=(0.5, 1.0),
        power_bias_w=30.0,
        power_noise_w=20.0,
        power_min_w=120.0,
        power_max_w=900.0,
        # all-smi's Gaudi reader reports no clock (hl-smi's CSV has none): 0 = unavailable.
        clock_idle_mhz=0,
        clock_busy_mhz=0,
        clock_noise_mhz=0.0,
        clock_min_mhz=0,
        clock_max_mhz=0,
        make_uuid=_gaudi_uuid,
        static_detail=_gaudi3_detail,
        busy_workloads=(_GAUDI_TRAIN, _GAUDI_TRAIN, _VLLM, _EVAL),
        idle_workloads=(_JUPYTER, _EVAL),
        # all-smi's Gaudi reader also rewrites Current Power, Used Memory and Free Memory
        # in `detail` on every read; left out so all_smi_gpu_info keeps one series.
    ),
    "tenstorrent": Part(
        name="Tenstorrent Wormhole n300",
        device_type="NPU",
        total_memory=24 * GIB,
        power_base_w=(20.0, 30.0),
        power_per_util_w=(1.3, 1.7),
        power_per_mem_pct_w=(0.1, 0.2),
        power_bias_w=8.0,
        power_noise_w=5.0,
        power_min_w=15.0,
        power_max_w=300.0,
        clock_idle_mhz=500,
        clock_busy_mhz=1000,
        clock_noise_mhz=20.0,
        clock_min_mhz=500,
        clock_max_mhz=1000,
        make_uuid=_tenstorrent_uuid,
        static_detail=_n300_detail,
        busy_workloads=(_TT_DEMO, _TT_DEMO, _VLLM),
        idle_workloads=(_JUPYTER, _TT_DEMO),
        live_detail=_n300_live,
    ),
}

# H200 SXM: NVML's thermal thresholds (slowdown, shutdown, max operating), °C.
NVIDIA_THRESHOLDS_C: Final = (89, 92, 87)
NVIDIA_GSP_VERSION: Final = _NV_DRIVER
# Each SXM GPU of an HGX board reaches the others through 18 NvLink 4 links to the switches.
NVIDIA_SWITCH_LINKS: Final = tuple(
    NvLinkRemoteDevice(link_index=i, remote_type="switch", bandwidth_mb_s=50_000) for i in range(18)
)
