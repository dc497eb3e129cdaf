"""FakeNvml against the installed nvidia-ml-py (`pynvml`): a fake that drifts lets the
reader pass its tests while calling what the real module lacks, or with other arguments.

Checked here: every `nvml*` function, `NVML_*` constant and `NVMLError*` class the fake
exposes exists in pynvml with the same parameters, value or error code; the objects the
fake returns carry the fields of pynvml's ctypes structures; and every NVML name the
package's source asks for (found by parsing it) exists in both, so the reader can never
call a function that is not there. The reader's hard-coded NVML values are ABI; they are
compared with pynvml's constants too, since the fake's devices are keyed by them.
"""

from __future__ import annotations

import ast
import ctypes
import inspect
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pynvml
import pytest

from smicast.readers import nvidia_static
from tests import fake_nvml
from tests.fake_nvml import FakeNvml, FakeProcess, FakeSample, h100

SOURCE_ROOT = Path(__file__).resolve().parent.parent / "src" / "smicast"
NVML_NAME = re.compile(r"nvml[A-Z]\w*|NVML_\w+|NVMLError\w*")


def _fake_names(kind: str) -> list[str]:
    names = []
    for name in dir(FakeNvml):
        value = getattr(FakeNvml, name)
        if kind == "function" and re.fullmatch(r"nvml[A-Z]\w*", name):
            if inspect.isfunction(value):
                names.append(name)
        elif kind == "constant" and re.fullmatch(r"nvml[A-Z]\w*|NVML_\w+", name):
            if not callable(value):
                names.append(name)
        elif kind == "error" and name.startswith("NVMLError"):
            names.append(name)
    return sorted(names)


FAKE_FUNCTIONS = _fake_names("function")
FAKE_CONSTANTS = _fake_names("constant")
FAKE_ERRORS = _fake_names("error")
# The module-level codes the fake's error classes are built from.
FAKE_MODULE_CONSTANTS = sorted(n for n in vars(fake_nvml) if n.startswith("NVML_"))


def _rich_fake() -> FakeNvml:
    """One device that answers every call the fake has, lists included."""
    device = h100(
        fan_rpm=1450,
        fan_percent=35,
        energy_mj=123_456,
        compute_processes=[FakeProcess(4242, 2 * 1024**3)],
        graphics_processes=[FakeProcess(777, None)],
        process_samples=[FakeSample(4242, 2_000, 55)],
    )
    return FakeNvml([device])


def _real_signature(name: str) -> inspect.Signature:
    """The parameters a caller of `pynvml.<name>` must match.

    pynvml decorates some functions (convertStrBytes, throwOnVersionMismatch) with a
    `functools.wraps` wrapper taking `(*args, **kwargs)`. Such a wrapper passes its
    arguments on, so the wrapped function's parameters are the real ones; a wrapper of
    any other shape would need a look of its own, and fails here.
    """
    real = getattr(pynvml, name)
    inner = inspect.unwrap(real)
    if inner is not real:
        outer = inspect.signature(real, follow_wrapped=False)
        kinds = [p.kind for p in outer.parameters.values()]
        assert kinds == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD], name
    return inspect.signature(inner)


def _default(value: Any) -> Any:
    # ctypes scalars compare by identity; pynvml uses them as out-parameter defaults.
    if isinstance(value, ctypes._SimpleCData):
        return (type(value).__name__, value.value)
    return value


def _parameters(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, _default(p.default)) for p in signature.parameters.values()]


def test_the_fake_exposes_a_surface_worth_checking() -> None:
    assert len(FAKE_FUNCTIONS) >= 40
    assert {"NVML_NVLINK_MAX_LINKS", "nvmlMemory_v2"} <= set(FAKE_CONSTANTS)
    assert {"NVMLError", "NVMLError_NotSupported", "NVMLError_GpuIsLost"} <= set(FAKE_ERRORS)


@pytest.mark.parametrize("name", FAKE_FUNCTIONS)
def test_fake_function_has_pynvml_parameters(name: str) -> None:
    assert callable(getattr(pynvml, name, None)), f"pynvml has no {name}"
    fake = inspect.signature(getattr(_rich_fake(), name))  # bound: no `self`
    assert _parameters(fake) == _parameters(_real_signature(name))


@pytest.mark.parametrize("name", FAKE_CONSTANTS)
def test_fake_constant_has_pynvml_value(name: str) -> None:
    assert getattr(FakeNvml, name) == getattr(pynvml, name)


@pytest.mark.parametrize("name", FAKE_MODULE_CONSTANTS)
def test_fake_error_code_has_pynvml_value(name: str) -> None:
    assert getattr(fake_nvml, name) == getattr(pynvml, name)


@pytest.mark.parametrize("name", FAKE_ERRORS)
def test_fake_error_class_matches_pynvml(name: str) -> None:
    real, fake = getattr(pynvml, name), getattr(FakeNvml, name)
    assert issubclass(real, pynvml.NVMLError)
    assert issubclass(fake, FakeNvml.NVMLError)
    if name == "NVMLError":
        return
    code = real().value
    assert fake().value == code
    # NVMLError(code) builds the subclass for that code, in both.
    assert type(FakeNvml.NVMLError(code)).__name__ == type(pynvml.NVMLError(code)).__name__
    assert str(fake()) == str(real())


def test_unknown_error_codes_stay_the_base_class() -> None:
    assert type(pynvml.NVMLError(4321)) is pynvml.NVMLError
    assert type(FakeNvml.NVMLError(4321)) is FakeNvml.NVMLError
    assert FakeNvml.NVMLError(4321).value == 4321


# (fake call, its arguments after the handle, pynvml function that fills the struct, struct)
RESULT_STRUCTS = [
    ("nvmlDeviceGetUtilizationRates", (), None, "c_nvmlUtilization_t"),
    ("nvmlDeviceGetMemoryInfo", (), None, "c_nvmlMemory_t"),
    ("nvmlDeviceGetMemoryInfo", (pynvml.nvmlMemory_v2,), None, "c_nvmlMemory_v2_t"),
    ("nvmlDeviceGetComputeRunningProcesses_v3", (), None, "c_nvmlProcessInfo_v3_t"),
    ("nvmlDeviceGetComputeRunningProcesses_v2", (), None, "c_nvmlProcessInfo_v2_t"),
    (
        "nvmlDeviceGetComputeRunningProcesses",
        (),
        "nvmlDeviceGetComputeRunningProcesses_v3",
        "c_nvmlProcessInfo_v3_t",
    ),
    ("nvmlDeviceGetGraphicsRunningProcesses_v3", (), None, "c_nvmlProcessInfo_v3_t"),
    ("nvmlDeviceGetGraphicsRunningProcesses_v2", (), None, "c_nvmlProcessInfo_v2_t"),
    (
        "nvmlDeviceGetGraphicsRunningProcesses",
        (),
        "nvmlDeviceGetGraphicsRunningProcesses_v3",
        "c_nvmlProcessInfo_v3_t",
    ),
    ("nvmlDeviceGetProcessUtilization", (0,), None, "c_nvmlProcessUtilizationSample_t"),
]


@pytest.mark.parametrize(("name", "args", "filled_by", "struct"), RESULT_STRUCTS)
def test_fake_results_carry_the_fields_of_pynvml_structs(
    name: str, args: tuple[Any, ...], filled_by: str | None, struct: str
) -> None:
    # The table names the struct pynvml's own code builds for this call.
    source = inspect.getsource(inspect.unwrap(getattr(pynvml, filled_by or name)))
    assert re.search(rf"\b{struct}\b", source), f"pynvml's {filled_by or name} has no {struct}"
    if filled_by is not None:  # the unversioned name is a thin wrapper of that one
        assert filled_by in inspect.getsource(inspect.unwrap(getattr(pynvml, name)))
    fields = {field[0] for field in getattr(pynvml, struct)._fields_}
    nvml = _rich_fake()
    result = getattr(nvml, name)(nvml.nvmlDeviceGetHandleByIndex(0), *args)
    objects = result if isinstance(result, list) else [result]
    assert objects, f"{name} returned nothing to compare"
    for obj in objects:
        assert set(vars(obj)) == fields


def _decodes_strings(function: Any) -> bool:
    """pynvml's convertStrBytes wrapper turns the C string into `str`."""
    wrapper = pynvml.convertStrBytes(lambda: None)
    return getattr(function, "__code__", None) is wrapper.__code__


def _call_arguments(nvml: FakeNvml, name: str) -> list[Any]:
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    by_name = {"handle": handle, "device": handle, "index": 0, "type": 0, "sensor": 0}
    by_name |= {"threshold": 0, "link": 0, "fan": 0, "timeStamp": 0}
    required = [p.name for p in _real_signature(name).parameters.values() if p.default is p.empty]
    return [by_name[parameter] for parameter in required]


@pytest.mark.parametrize("name", FAKE_FUNCTIONS)
def test_fake_strings_are_str_where_pynvml_decodes_them(name: str) -> None:
    nvml = _rich_fake()
    result = getattr(nvml, name)(*_call_arguments(nvml, name))
    if isinstance(result, str | bytes):
        # str from a decoding wrapper; raw bytes (GSP firmware version) from a char buffer.
        assert isinstance(result, str) == _decodes_strings(getattr(pynvml, name))


# -- what the package asks NVML for, found in its source ---------------------------------


def _literal_strings(node: ast.expr) -> list[str] | None:
    if not isinstance(node, ast.Tuple | ast.List):
        return None
    values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
    strings = [value for value in values if isinstance(value, str)]
    return strings if len(strings) == len(node.elts) else None


def _expand(node: ast.JoinedStr, env: dict[str, list[str]]) -> list[str] | None:
    """The strings an f-string can be, when its fields are comprehension variables over
    literal tuples; None when it cannot be known from the source alone."""
    parts: list[list[str]] = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append([str(value.value)])
        elif (
            isinstance(value, ast.FormattedValue)
            and isinstance(value.value, ast.Name)
            and value.value.id in env
            and value.format_spec is None
            and value.conversion == -1
        ):
            parts.append(env[value.value.id])
        else:
            return None
    return ["".join(combination) for combination in itertools.product(*parts)]


def _nvml_names(node: ast.AST, env: dict[str, list[str]], where: str) -> Iterator[tuple[str, str]]:
    """(name, file:line) for each NVML name the code uses, or ("?" + text) when unknowable."""
    if isinstance(node, ast.GeneratorExp | ast.ListComp | ast.SetComp | ast.DictComp):
        inner = dict(env)
        for generator in node.generators:
            yield from _nvml_names(generator.iter, env, where)
            values = _literal_strings(generator.iter)
            if isinstance(generator.target, ast.Name) and values is not None:
                inner[generator.target.id] = values
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for part in parts:
            yield from _nvml_names(part, inner, where)
        return
    line = f"{where}:{getattr(node, 'lineno', '?')}"
    if isinstance(node, ast.Attribute) and NVML_NAME.fullmatch(node.attr):
        yield node.attr, line
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        if NVML_NAME.fullmatch(node.value):
            yield node.value, line
    elif isinstance(node, ast.JoinedStr):
        head = node.values[0] if node.values else None
        if isinstance(head, ast.Constant) and re.match(r"nvml[A-Z]|NVML_", str(head.value)):
            expanded = _expand(node, env)
            if expanded is None:
                yield "?" + ast.unparse(node), line
            else:
                yield from ((name, line) for name in expanded)
            return
    for child in ast.iter_child_nodes(node):
        yield from _nvml_names(child, env, where)


def _names_the_package_uses() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(SOURCE_ROOT.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "nvml" not in source.lower():  # every name looked for has it; parsing costs
            continue
        where = str(path.relative_to(SOURCE_ROOT))
        for name, line in _nvml_names(ast.parse(source), {}, where):
            found.setdefault(name, line)
    return found


USED_NAMES = _names_the_package_uses()


def test_the_source_scan_finds_the_reader_calls() -> None:
    # Called by name through nvml_attempt, by attribute, and built in an f-string.
    assert {
        "nvmlDeviceGetClockInfo",
        "nvmlInit",
        "nvmlDeviceGetComputeRunningProcesses_v2",
        "NVML_NVLINK_MAX_LINKS",
    } <= set(USED_NAMES)
    unknowable = {name: line for name, line in USED_NAMES.items() if name.startswith("?")}
    assert not unknowable, f"NVML names built in ways this test cannot follow: {unknowable}"


def test_names_the_scan_cannot_follow_are_reported_not_skipped() -> None:
    snippet = (
        "for suffix in suffixes:\n"
        "    nvml_attempt(nvml, f'nvmlDeviceGetFoo{suffix}')\n"
        "names = [f'nvmlBar{kind}' for kind in ('_v2', '')]\n"
        "log.info('nvmlInit failed')\n"
    )
    found = dict(_nvml_names(ast.parse(snippet), {}, "snippet"))
    assert set(found) == {"?f'nvmlDeviceGetFoo{suffix}'", "nvmlBar_v2", "nvmlBar"}


@pytest.mark.parametrize("name", sorted(n for n in USED_NAMES if not n.startswith("?")))
def test_what_the_package_asks_for_exists_in_pynvml_and_the_fake(name: str) -> None:
    where = USED_NAMES[name]
    assert hasattr(pynvml, name), f"{where}: pynvml has no {name}"
    assert hasattr(_rich_fake(), name), f"{where}: FakeNvml has no {name}"


def _overrides_in_tests() -> Iterator[tuple[str, ast.FunctionDef, str]]:
    """`nvml*` methods of the FakeNvml subclasses that single tests define."""
    tests = Path(__file__).resolve().parent
    for path in sorted(tests.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        if "FakeNvml" not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.ClassDef):
                continue
            if not any(isinstance(b, ast.Name) and b.id == "FakeNvml" for b in node.bases):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and re.fullmatch(r"nvml[A-Z]\w*", item.name):
                    yield item.name, item, f"{path.name}:{item.lineno}"


@pytest.mark.parametrize(
    ("name", "function", "where"),
    list(_overrides_in_tests()),
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_fake_subclasses_in_tests_keep_pynvml_parameters(
    name: str, function: ast.FunctionDef, where: str
) -> None:
    arguments = function.args
    names = [a.arg for a in [*arguments.posonlyargs, *arguments.args][1:]]
    real = _real_signature(name).parameters.values()
    assert names == [p.name for p in real], where
    assert len(arguments.defaults) == sum(p.default is not p.empty for p in real), where


# -- the reader's hard-coded NVML values (nvml.h ABI) -------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).upper()


READER_VALUES = [
    *(
        (name, getattr(nvidia_static, name), name)
        for name in dir(nvidia_static)
        if name.startswith("NVML_")
    ),
    ("TEMPERATURE_GPU", nvidia_static.TEMPERATURE_GPU, "NVML_TEMPERATURE_GPU"),
    *(
        (name, getattr(nvidia_static, name), f"NVML_TEMPERATURE_{name}")
        for name in dir(nvidia_static)
        if name.startswith("THRESHOLD_")
    ),
    *(
        (name, getattr(nvidia_static, name), f"NVML_{name}")
        for name in dir(nvidia_static)
        if name.startswith("CLOCK_")
    ),
    ("ARCH_BLACKWELL", nvidia_static.ARCH_BLACKWELL, "NVML_DEVICE_ARCH_BLACKWELL"),
    *(
        (f"ARCHITECTURE_NAMES[{code}]", code, f"NVML_DEVICE_ARCH_{text.upper()}")
        for code, text in nvidia_static.ARCHITECTURE_NAMES.items()
    ),
    *(
        (f"COMPUTE_MODE_NAMES[{code}]", code, f"NVML_COMPUTEMODE_{_snake(text)}")
        for code, text in nvidia_static.COMPUTE_MODE_NAMES.items()
    ),
    *(
        (f"NVLINK_REMOTE_TYPES[{code}]", code, f"NVML_NVLINK_DEVICE_TYPE_{text.upper()}")
        for code, text in nvidia_static.NVLINK_REMOTE_TYPES.items()
    ),
]


@pytest.mark.parametrize(("name", "value", "constant"), READER_VALUES)
def test_reader_nvml_values_match_pynvml(name: str, value: int, constant: str) -> None:
    assert getattr(pynvml, constant) == value, f"{name} is {value}, pynvml's {constant} differs"
