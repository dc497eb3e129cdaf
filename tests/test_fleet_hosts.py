"""Host lists as all-smi reads them, plus https, prefixes, unix: and credentials kept out of labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from smicast.fleet.hosts import (
    MAX_HOSTS,
    HostError,
    dedupe,
    parse_host,
    parse_hosts_option,
    read_hostfile,
    redact,
)


def test_http_is_added_and_the_label_is_host_port() -> None:
    spec = parse_host("node-1:9090")
    assert (spec.label, spec.base_url) == ("node-1:9090", "http://node-1:9090")
    assert parse_host("http://node-1:9090/").label == "node-1:9090"
    assert parse_host("http://node-1:9090/metrics").base_url == "http://node-1:9090"
    assert parse_host("http://node-1:9090/events").base_url == "http://node-1:9090"


def test_https_prefix_unix_and_credentials() -> None:
    spec = parse_host("https://ops:p%40ss@gpu.example:8443/smicast/")
    assert spec.base_url == "https://gpu.example:8443/smicast"
    assert spec.label == "https://gpu.example:8443/smicast"
    assert (spec.username, spec.password) == ("ops", "p@ss")
    assert "p@ss" not in repr(spec) and "ops" not in spec.label
    sock = parse_host("unix:/run/smicast.sock")
    assert (sock.label, sock.unix_path) == ("unix:/run/smicast.sock", "/run/smicast.sock")


@pytest.mark.parametrize(
    "text", ["", "ftp://x", "http://", "node:99999", "unix:", "http://n:1/?q=1", "x" * 3000]
)
def test_bad_hosts_are_refused(text: str) -> None:
    with pytest.raises(HostError):
        parse_host(text)


def test_bad_host_message_hides_the_password() -> None:
    with pytest.raises(HostError) as info:
        parse_host("http://ops:hunter2@node:99999")
    assert "hunter2" not in str(info.value)


def test_hosts_option_splits_commas_and_repeats() -> None:
    labels = [h.label for h in parse_hosts_option(["a:1,b:2", " c:3 ,"])]
    assert labels == ["a:1", "b:2", "c:3"]


def test_hostfile_lines_comments_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("# the fleet\n\nnode-1:9090\n  http://node-2:9090  \n# node-3:9090\nunix:/s\n")
    assert [h.label for h in read_hostfile(path)] == ["node-1:9090", "node-2:9090", "unix:/s"]
    path.write_text("node-1:9090\nftp://bad\n")
    with pytest.raises(HostError, match=r"hosts:2: "):
        read_hostfile(path)
    with pytest.raises(HostError, match="No such file"):
        read_hostfile(tmp_path / "missing")


def test_dedupe_keeps_order_and_bounds_the_fleet() -> None:
    hosts = parse_hosts_option(["a:1,b:2,a:1"])
    assert [h.label for h in dedupe(hosts)] == ["a:1", "b:2"]
    many = [parse_host(f"n{i}:1") for i in range(MAX_HOSTS + 1)]
    with pytest.raises(HostError, match="at most"):
        dedupe(many)


def test_redact() -> None:
    assert redact("GET http://u:p@h:1/x failed") == "GET http://***@h:1/x failed"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
