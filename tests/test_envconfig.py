"""all-smi's configuration names work as fallbacks; `SMICAST_*` wins; all-smi's boolean forms."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from smicast.api.cors import CorsPolicy
from smicast.api.state import DEFAULT_MAX_SUBSCRIBERS, max_subscribers_from_env
from smicast.cli import build_parser, main
from smicast.commands import api_settings
from smicast.envconfig import all_smi_flag, lookup, parse_bool
from tests.test_api_process import free_port, reap


def api_args(*argv: str) -> argparse.Namespace:
    return build_parser(only="api").parse_args(["api", *argv])


def test_lookup_prefers_smicast_name_and_skips_blank() -> None:
    env = {"SMICAST_API_PORT": "9100", "ALL_SMI_API_PORT": "9200"}
    found = lookup("API_PORT", env)
    assert found is not None and (found.value, found.name) == ("9100", "SMICAST_API_PORT")
    found = lookup("API_PORT", {"SMICAST_API_PORT": "  ", "ALL_SMI_API_PORT": "9200"})
    assert found is not None and (found.value, found.name) == ("9200", "ALL_SMI_API_PORT")
    assert lookup("API_PORT", {}) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("API_PORT", "9191"),
        ("API_INTERVAL_SECS", "7"),
        ("API_SOCKET", "/run/x.sock"),
        ("API_PROCESSES", "true"),
        ("API_CORS_ALLOWED_ORIGINS", "https://a.example"),
        ("API_MAX_SSE_SUBSCRIBERS", "5"),
    ],
)
def test_every_all_smi_name_is_a_fallback(key: str, value: str) -> None:
    found = lookup(key, {f"ALL_SMI_{key}": value})
    assert found is not None and found.name == f"ALL_SMI_{key}"
    assert any(
        f"(ALL_SMI_{key})" in line
        for line in api_settings.resolve(api_args(), {f"ALL_SMI_{key}": value})
    )


def test_resolve_precedence_cli_then_smicast_then_all_smi_then_default() -> None:
    env = {
        "SMICAST_API_PORT": "9100",
        "ALL_SMI_API_PORT": "9200",
        "ALL_SMI_API_INTERVAL_SECS": "7",
        "ALL_SMI_API_PROCESSES": "TRUE",
        "ALL_SMI_API_SOCKET": "true",
    }
    args = api_args()
    sources = api_settings.resolve(args, env)
    assert (args.port, args.interval, args.processes, args.socket) == (9100, 7.0, True, "default")
    assert "port=9100 (SMICAST_API_PORT)" in sources
    assert "interval=7s (ALL_SMI_API_INTERVAL_SECS)" in sources
    assert "processes=true (ALL_SMI_API_PROCESSES)" in sources

    args = api_args("--port", "9300", "--interval", "2", "--processes=false")
    sources = api_settings.resolve(args, env)
    assert (args.port, args.interval, args.processes) == (9300, 2.0, False)
    assert "port=9300 (--port)" in sources and "processes=false (--processes)" in sources

    args = api_args()
    assert api_settings.resolve(args, {}) == []
    assert (args.port, args.interval, args.processes, args.socket) == (9090, 3.0, False, None)


def test_all_smi_socket_and_processes_rules() -> None:
    for raw, expected in [
        ("false", None),
        ("0", None),
        ("1", "default"),
        ("/x/y.sock", "/x/y.sock"),
    ]:
        args = api_args()
        api_settings.resolve(args, {"ALL_SMI_API_SOCKET": raw})
        assert args.socket == expected
    # all-smi: 1 or true in any case is on, anything else (even "yes") is off.
    assert all_smi_flag("True") and all_smi_flag("1") and not all_smi_flag("yes")
    args = api_args()
    api_settings.resolve(args, {"ALL_SMI_API_PROCESSES": "yes"})
    assert args.processes is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALL_SMI_API_PORT": "http"}, "ALL_SMI_API_PORT='http' is not a port number"),
        ({"SMICAST_API_PORT": "70000"}, "SMICAST_API_PORT must be 0..65535"),
        ({"ALL_SMI_API_INTERVAL_SECS": "0"}, "ALL_SMI_API_INTERVAL_SECS must be > 0"),
        ({"SMICAST_API_PROCESSES": "maybe"}, "SMICAST_API_PROCESSES: expected true or false"),
    ],
)
def test_malformed_environment_is_a_named_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(api_settings.SettingError, match=message):
        api_settings.resolve(api_args(), env)


def test_cors_and_subscriber_cap_read_all_smi_names() -> None:
    policy = CorsPolicy.from_env({"ALL_SMI_API_CORS_ALLOWED_ORIGINS": "https://grafana.example"})
    assert policy.allow_origin("https://grafana.example") == "https://grafana.example"
    policy = CorsPolicy.from_env(
        {
            "SMICAST_API_CORS_ALLOWED_ORIGINS": "https://a.example",
            "ALL_SMI_API_CORS_ALLOWED_ORIGINS": "https://b.example",
        }
    )
    assert policy.allow_origin("https://b.example") is None
    assert max_subscribers_from_env({"ALL_SMI_API_MAX_SSE_SUBSCRIBERS": "7"}) == 7
    assert (
        max_subscribers_from_env(
            {"SMICAST_API_MAX_SSE_SUBSCRIBERS": "3", "ALL_SMI_API_MAX_SSE_SUBSCRIBERS": "7"}
        )
        == 3
    )
    assert max_subscribers_from_env({"ALL_SMI_API_MAX_SSE_SUBSCRIBERS": "-1"}) == (
        DEFAULT_MAX_SUBSCRIBERS
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("on", True), ("no", False)],
)
def test_parse_bool(text: str, expected: bool) -> None:
    assert parse_bool(text) is expected


def test_snapshot_pretty_accepts_all_smi_boolean_forms(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["snapshot", "--include", "memory"]
    assert main([*base, "--pretty=false"]) == 0
    assert "\n" not in capsys.readouterr().out.rstrip("\n")
    assert main([*base, "--pretty=true"]) == 0
    assert capsys.readouterr().out.startswith("{\n  ")
    assert main([*base, "--pretty"]) == 0
    assert capsys.readouterr().out.startswith("{\n  ")
    assert main([*base, "--no-pretty"]) == 0
    assert "\n" not in capsys.readouterr().out.rstrip("\n")
    with pytest.raises(SystemExit) as exc:
        main([*base, "--pretty=perhaps"])
    assert exc.value.code == 2
    assert "expected true or false" in capsys.readouterr().err


def test_api_processes_boolean_forms() -> None:
    assert api_args("--processes").processes is True
    assert api_args("--processes=true").processes is True
    assert api_args("--processes=false").processes is False
    assert api_args("--processes", "--interval", "1").processes is True


def test_api_process_listens_on_all_smi_port_and_logs_the_source(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "SMICAST_NO_GPU": "1",
        "ALL_SMI_API_PORT": str(port),
        "ALL_SMI_API_INTERVAL_SECS": "0.2",
        "ALL_SMI_API_PROCESSES": "true",
    }
    for name in ("SMICAST_API_PORT", "SMICAST_API_INTERVAL_SECS", "SMICAST_API_PROCESSES"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "smicast", "api", "--bind", "127.0.0.1"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        while not any("listening on" in line for line in seen):
            line = proc.stderr.readline()
            assert line, f"server exited: {proc.wait()}"
            seen.append(line)
        assert f"127.0.0.1:{port}" in seen[-1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot", timeout=10) as resp:
            assert "hostname" in json.loads(resp.read())
    finally:
        proc.terminate()
        proc.wait(10)
        log = "".join(seen) + proc.stderr.read()
        reap(proc)
    assert f"port={port} (ALL_SMI_API_PORT)" in log
    assert "interval=0.2s (ALL_SMI_API_INTERVAL_SECS)" in log
    assert "processes=true (ALL_SMI_API_PROCESSES)" in log
