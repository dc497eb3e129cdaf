"""Test certificates made at test time: a CA, a server certificate for 127.0.0.1/localhost
and a client certificate, plus a web-config writer. Keys are EC P-256 (fast to make)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TEST_COST = 4  # bcrypt cost where the cost is not the point


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path  # signed by a CA the server does not trust
    other_client_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    sans: list[x509.GeneralName] | None = None,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else None
        usage = usage or x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("smicast test CA", ca_key, "smicast test CA", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert(
        "localhost",
        server_key,
        "smicast test CA",
        ca_key,
        server=True,
        sans=[
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert(
        "scraper",
        client_key,
        "smicast test CA",
        ca_key,
        sans=[x509.DNSName("scraper.example.org")],
    )
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue_ca = _cert("rogue CA", rogue_key, "rogue CA", rogue_key, ca=True)
    del rogue_ca
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("intruder", other_key, "rogue CA", rogue_key)
    pem = serialization.Encoding.PEM
    pki = Pki(
        ca=directory / "ca.pem",
        cert=directory / "server.pem",
        key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_client_cert=directory / "other.pem",
        other_client_key=directory / "other.key",
    )
    pki.ca.write_bytes(ca.public_bytes(pem))
    pki.cert.write_bytes(server.public_bytes(pem))
    _write_key(pki.key, server_key)
    pki.client_cert.write_bytes(client.public_bytes(pem))
    _write_key(pki.client_key, client_key)
    pki.other_client_cert.write_bytes(other.public_bytes(pem))
    _write_key(pki.other_client_key, other_key)
    return pki


def bcrypt_hash(password: str, cost: int = TEST_COST) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()
    return "$2y$" + hashed[4:]


def web_config_yaml(
    pki: Pki | None = None,
    users: dict[str, str] | None = None,
    *,
    client_auth: str | None = None,
    extra_tls: str = "",
    extra: str = "",
) -> str:
    """A web-config.yml; `users` maps names to plain passwords (hashed here)."""
    lines: list[str] = []
    if pki is not None:
        lines += ["tls_server_config:", f"  cert_file: {pki.cert}", f"  key_file: {pki.key}"]
        if client_auth:
            lines += [f"  client_auth_type: {client_auth}", f"  client_ca_file: {pki.ca}"]
        lines += [f"  {line}" for line in extra_tls.splitlines() if line]
    if users:
        lines.append("basic_auth_users:")
        lines += [f"  {name}: {bcrypt_hash(pw)}" for name, pw in users.items()]
    lines += extra.splitlines()
    return "\n".join(lines) + "\n"
