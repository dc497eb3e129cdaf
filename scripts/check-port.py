"""Exit 0 when TCP PORT is free on every interface; otherwise say so, naming make's PORT.

`make run` and `make demo` call it first, so a taken port (Prometheus's default is also
9090) ends in one line that says what to do, never in a traceback.
"""

import errno
import sys

from smicast.api.server import ListenError, open_tcp


def port_is_free(port: int) -> bool:
    """Bind exactly as `smicast api` does with no --bind (every interface, dual stack)."""
    try:
        sockets = open_tcp(None, port)
    except ListenError as exc:
        if exc.errno == errno.EADDRINUSE:
            return False
        raise
    for sock in sockets:
        sock.close()
    return True


def main() -> int:
    target = sys.argv[1] if len(sys.argv) > 1 else "9090"
    if not target.isdigit() or not 0 < int(target) <= 65535:
        print(f"make: PORT must be a number from 1 to 65535, got {target!r}", file=sys.stderr)
        return 2
    port = int(target)
    try:
        free = port_is_free(port)
    except ListenError as exc:  # it names the address
        print(f"make: {exc.strerror}", file=sys.stderr)
        return 1
    if not free:
        hint = " (Prometheus also defaults to 9090)" if port == 9090 else ""
        print(
            f"make: port {port} is already in use{hint}; "
            f"serve on another one with: make run PORT={port + 1}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
