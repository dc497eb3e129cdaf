"""TLS and basic auth for the benchmarks: a throwaway CA and server certificate, a web-config
file (the exporter-toolkit format both smicast and node_exporter read), client settings."""

from __future__ import annotations

import base64
import ssl
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.tls_material import bcrypt_hash, make_pki  # the test suite's certificate maker

USER = "bench"
PASSWORD = "bench password"


@dataclass(frozen=True)
class BenchTls:
    web_config: Path
    ca: Path
    authorization: str  # the `Authorization` header value for USER

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib with our CA and the credentials, for readiness checks."""

        class WithAuth(urllib.request.BaseHandler):
            def https_request(self, req: urllib.request.Request) -> urllib.request.Request:
                req.add_unredirected_header("Authorization", header)
                return req

        header = self.authorization
        return urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.client_context()), WithAuth()
        )


def make_bench_tls(cost: int = 10) -> BenchTls:
    """TLS plus one bcrypt user at `cost` (10, as deployed: the cache makes it a one-off)."""
    directory = Path(tempfile.mkdtemp(prefix="smicast-bench-tls-"))
    pki = make_pki(directory)
    config = directory / "web.yml"
    config.write_text(
        f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n"
        f"basic_auth_users:\n  {USER}: {bcrypt_hash(PASSWORD, cost)}\n"
    )
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return BenchTls(config, pki.ca, f"Basic {token}")
