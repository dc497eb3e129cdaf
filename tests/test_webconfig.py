"""The exporter-toolkit web-config format: what is accepted, and errors that name the key."""

from __future__ import annotations

import io
from pathlib import Path

import bcrypt
import pytest

from smicast.api.auth import hash_password
from smicast.api.tls import build_context, limitations
from smicast.api.webconfig import WebConfigError, load, parse, parse_duration
from smicast.cli import main
from smicast.commands import hash_password as hash_password_command
from tests.tls_material import Pki, bcrypt_hash, make_pki

HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_every_toolkit_key_parses(pki: Pki) -> None:
    text = f"""
tls_server_config:
  cert_file: {pki.cert}
  key_file: {pki.key}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {pki.ca}
  client_allowed_sans: [scraper.example.org]
  min_version: TLS12
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
  curve_preferences: [X25519, CurveP256]
  prefer_server_cipher_suites: false
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=60
basic_auth_users:
  alice: {HASH}
  bob: {HASH.replace("$2y$", "$2b$")}
  carol: {HASH.replace("$2y$", "$2a$")}
rate_limit:
  interval: 1s
  burst: 20
"""
    config = parse(text, base_dir=Path("/"))
    assert config.tls is not None
    assert config.tls.client_auth_type == "RequireAndVerifyClientCert"
    assert config.tls.prefer_server_cipher_suites is False
    assert config.tls.curve_preferences == ("X25519", "CurveP256")
    assert set(config.users) == {"alice", "bob", "carol"}
    assert config.headers["X-Frame-Options"] == "deny"
    assert config.http2 is False
    assert config.rate_limit is not None and config.rate_limit.burst == 20
    context = build_context(config.tls)
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert limitations(config.tls) == [
        "curve_preferences: only X25519 is used (Python's ssl module sets a single curve)"
    ]


def test_empty_file_and_empty_sections_mean_plain_http_without_auth() -> None:
    assert parse("", base_dir=Path("/")).tls is None
    config = parse("tls_server_config:\nbasic_auth_users:\n", base_dir=Path("/"))
    assert config.tls is None and not config.users


def test_relative_paths_are_taken_from_the_config_directory(tmp_path: Path, pki: Pki) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "s.pem").write_bytes(pki.cert.read_bytes())
    (tmp_path / "tls" / "s.key").write_bytes(pki.key.read_bytes())
    config_file = tmp_path / "web.yml"
    config_file.write_text("tls_server_config:\n  cert_file: tls/s.pem\n  key_file: tls/s.key\n")
    config = load(config_file)
    assert config.tls is not None and config.tls.cert_file == tmp_path / "tls" / "s.pem"
    build_context(config.tls)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("tls_config: {}\n", "tls_config: unknown key"),
        ("tls_server_config:\n  certfile: a\n", "tls_server_config.certfile: unknown key"),
        ("http_server_config:\n  http3: true\n", "http_server_config.http3: unknown key"),
        ("rate_limit:\n  every: 1s\n", "rate_limit.every: unknown key"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Always\n",
            "tls_server_config.client_auth_type: unknown value 'Always'",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n",
            "tls_server_config.min_version: unknown value 'TLS14'",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n"
            "  max_version: TLS12\n",
            "tls_server_config.min_version: TLS13 is above max_version",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [RC4]\n",
            "tls_server_config.cipher_suites[0]: unknown value 'RC4'",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [P256]\n",
            "tls_server_config.curve_preferences[0]: unknown value 'P256'",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n"
            "  prefer_server_cipher_suites: 'true'\n",
            "tls_server_config.prefer_server_cipher_suites: expected true or false",
        ),
        ("tls_server_config:\n  cert_file: a\n", "tls_server_config: missing one of key"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
            "tls_server_config.client_auth_type: client CAs are configured without",
        ),
        (
            "http_server_config:\n  headers:\n    Server: x\n",
            "http_server_config.headers.Server: this header can not be configured",
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "http_server_config.headers.X-Frame-Options: expected one of deny, sameorigin",
        ),
        ("basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice: not a bcrypt hash"),
        ("basic_auth_users:\n  - alice\n", "basic_auth_users: expected a mapping"),
        (f"basic_auth_users:\n  a: {HASH}\n  a: {HASH}\n", "a: duplicate key"),
        ("rate_limit:\n  interval: 1 s\n", "rate_limit.interval: not a duration"),
        ("rate_limit:\n  interval: 1s\n  burst: -1\n", "rate_limit.burst: expected a whole"),
        ("basic_auth_users: [\n", "not valid YAML"),
    ],
)
def test_strict_errors_name_the_key(text: str, named: str) -> None:
    with pytest.raises(WebConfigError) as caught:
        parse(text, base_dir=Path("/"))
    assert named in str(caught.value)


def test_certificate_problems_name_the_key(tmp_path: Path, pki: Pki) -> None:
    config = parse(
        f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.client_key}\n",
        base_dir=tmp_path,
    )
    assert config.tls is not None
    with pytest.raises(WebConfigError, match=r"tls_server_config\.cert_file/key_file"):
        build_context(config.tls)


def test_inline_certificate_and_key(pki: Pki) -> None:
    cert = pki.cert.read_text().replace("\n", "\n    ")
    key = pki.key.read_text().replace("\n", "\n    ")
    config = parse(
        f"tls_server_config:\n  cert: |\n    {cert}\n  key: |\n    {key}\n", base_dir=Path("/")
    )
    assert config.tls is not None
    build_context(config.tls)


def test_go_durations() -> None:
    assert parse_duration("1m30s", "k") == 90.0
    assert parse_duration("250ms", "k") == pytest.approx(0.25)
    assert parse_duration("0", "k") == 0.0
    assert parse_duration(None, "k") == 0.0
    with pytest.raises(WebConfigError, match="k: not a duration"):
        parse_duration("10", "k")


def test_api_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "web.yml"
    bad.write_text("basic_auth_users:\n  alice: x\ntls_server_config:\n  ciphers: []\n")
    with pytest.raises(SystemExit) as exited:
        main(["api", "--port", "0", "--socket", str(tmp_path / "s"), "--web-config", str(bad)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad}: tls_server_config.ciphers: unknown key" in err
    assert "Traceback" not in err


def test_api_reads_the_web_config_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "web.yml"
    bad.write_text("unknown: 1\n")
    monkeypatch.setenv("SMICAST_API_WEB_CONFIG", str(bad))
    with pytest.raises(SystemExit) as exited:
        main(["api", "--port", "0", "--socket", str(tmp_path / "s")])
    assert exited.value.code == 2
    assert "unknown: unknown key" in capsys.readouterr().err


def test_api_exits_2_for_a_missing_token_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "api",
                "--port",
                "0",
                "--socket",
                str(tmp_path / "s"),
                "--auth-token-file",
                str(tmp_path / "none"),
            ]
        )
    assert exited.value.code == 2
    assert "none: No such file or directory" in capsys.readouterr().err


def test_hash_password_from_stdin_verifies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["hash-password", "--cost", "4"]) == 0
    hashed = capsys.readouterr().out.strip()
    assert hashed.startswith("$2y$04$")
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    parse(f"basic_auth_users:\n  alice: {hashed}\n", base_dir=Path("/"))


def test_hash_password_prompts_twice_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    with pytest.raises(ValueError, match="do not match"):
        hash_password_command.read_password(io.StringIO(), ask=True)


@pytest.mark.parametrize("password", ["", "x" * 73])
def test_hash_password_refuses_what_bcrypt_cannot_check(
    password: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main(["hash-password", "--cost", "4"]) == 1
    assert "hash-password: error:" in capsys.readouterr().err
    with pytest.raises(ValueError):
        hash_password(password.encode())


def test_test_helper_hashes_are_toolkit_style() -> None:
    assert bcrypt_hash("pw").startswith("$2y$04$")
