"""Who may read the API: web-config `basic_auth_users` (bcrypt) and bearer tokens.

bcrypt is slow on purpose (cost 10 is tens of milliseconds), so a verified credential
is remembered: a scraper that sends the same password every second pays bcrypt once.
Only successes are remembered, keyed by a SHA-256 of user, password and hash, in a
bounded cache that a reload discards with the rest of the old configuration; requests
that arrive while the same credential is being checked wait for that one check.
Failures are never remembered: each new attempt costs a full bcrypt check, and an unknown user is checked against a dummy hash of
the same cost, so the answer time does not tell whether a user exists.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

import bcrypt

from smicast.api.webconfig import WebConfigError

MAX_PASSWORD_BYTES: Final = 72  # bcrypt's limit; longer is refused, never truncated
CACHE_ENTRIES: Final = 256
MAX_TOKEN_FILE_BYTES: Final = 1 << 20
MAX_TOKEN_BYTES: Final = 4096
# bcrypt runs in worker threads; at most this many at once, so a flood of bad passwords
# cannot take every thread (the rest wait their turn).
BCRYPT_CONCURRENCY: Final = 2

CheckPassword = Callable[[bytes, bytes], bool]


@functools.lru_cache(maxsize=8)
def _dummy_hash(prefix: bytes, cost: int) -> bytes:
    hashed = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))
    return prefix + hashed[len(prefix) :]


def _cost(hashed: bytes) -> int:
    return int(hashed[4:6])


class Authenticator:
    """Checks an `Authorization` header against users and tokens. Lives on one event loop."""

    def __init__(
        self,
        users: Mapping[str, bytes],
        tokens: Sequence[bytes] = (),
        *,
        check_password: CheckPassword = bcrypt.checkpw,
    ) -> None:
        self._users = dict(users)
        self._token_digests = tuple(hashlib.sha256(t).digest() for t in tokens)
        self._check = check_password
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._slots = asyncio.Semaphore(BCRYPT_CONCURRENCY)
        self._pending: dict[bytes, asyncio.Future[bool]] = {}
        costs = [_cost(h) for h in self._users.values()]
        self._dummy_cost = max(costs, default=10)
        if self._users:  # made now (once per cost), so the first unknown user is not slower
            _dummy_hash(b"$2y$", self._dummy_cost)

    @property
    def required(self) -> bool:
        return bool(self._users or self._token_digests)

    @property
    def schemes(self) -> tuple[str, ...]:
        """`WWW-Authenticate` challenges for a refusal."""
        out = []
        if self._users:
            out.append('Basic realm="smicast", charset="UTF-8"')
        if self._token_digests:
            out.append('Bearer realm="smicast"')
        return tuple(out)

    async def allowed(self, header: str | None) -> bool:
        if not self.required:
            return True
        if header is None:
            return False
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self._token_digests:
            return self._token_ok(value.strip().encode("utf-8", "surrogateescape"))
        if scheme == "basic" and self._users:
            pair = _basic_pair(value)
            return pair is not None and await self._password_ok(*pair)
        return False

    def _token_ok(self, token: bytes) -> bool:
        digest = hashlib.sha256(token).digest()
        ok = False
        for known in self._token_digests:  # no early exit: the same work for every token
            ok |= hmac.compare_digest(digest, known)
        return ok

    async def _password_ok(self, user: bytes, password: bytes) -> bool:
        if len(password) > MAX_PASSWORD_BYTES:
            return False  # bcrypt cannot check it; 401, not 500
        try:
            hashed = self._users.get(user.decode("utf-8"))
        except UnicodeDecodeError:
            hashed = None
        key = hashlib.sha256(b"\0".join((user, password, hashed or b""))).digest()
        if hashed is not None and key in self._verified:
            self._verified.move_to_end(key)
            return True
        # Many clients connecting at once with the same credential (a fleet, a burst of
        # dashboards) share one check instead of queueing one bcrypt each.
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._check_once(password, hashed))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        ok = await asyncio.shield(pending)
        if ok and hashed is not None:
            self._verified[key] = None
            while len(self._verified) > CACHE_ENTRIES:
                self._verified.popitem(last=False)
        return ok and hashed is not None

    async def _check_once(self, password: bytes, hashed: bytes | None) -> bool:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(
                None, self._verify, password, hashed
            )

    def _verify(self, password: bytes, hashed: bytes | None) -> bool:
        if hashed is None:  # unknown user: the same bcrypt work, then no
            self._check(password, _dummy_hash(b"$2y$", self._dummy_cost))
            return False
        try:
            return self._check(password, hashed)
        except ValueError:
            return False


def _basic_pair(value: str) -> tuple[bytes, bytes] | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = raw.partition(b":")
    return (user, password) if sep else None


def load_tokens(path: Path) -> tuple[bytes, ...]:
    """Bearer tokens, one per line; blank lines and lines starting with `#` are skipped."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise WebConfigError(f"{path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_TOKEN_FILE_BYTES:
        raise WebConfigError(f"{path}: larger than {MAX_TOKEN_FILE_BYTES} bytes")
    tokens = []
    for number, line in enumerate(data.splitlines(), 1):
        token = line.strip()
        if not token or token.startswith(b"#"):
            continue
        if len(token) > MAX_TOKEN_BYTES or any(c < 0x21 or c == 0x7F for c in token):
            raise WebConfigError(
                f"{path}: line {number}: a token is at most {MAX_TOKEN_BYTES} bytes "
                "of printable characters without spaces"
            )
        tokens.append(token)
    if not tokens:
        raise WebConfigError(f"{path}: no token in the file")
    return tuple(tokens)


def hash_password(password: bytes, cost: int = 10) -> str:
    """A bcrypt hash for `basic_auth_users`, in the `$2y$` form htpasswd writes."""
    if not password:
        raise ValueError("the password is empty")
    if len(password) > MAX_PASSWORD_BYTES:
        raise ValueError(f"the password is longer than {MAX_PASSWORD_BYTES} bytes (bcrypt's limit)")
    hashed = bcrypt.hashpw(password, bcrypt.gensalt(cost)).decode("ascii")
    return "$2y$" + hashed[4:]
