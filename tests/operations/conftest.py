"""Helpers for the operations tests: the real ``smsgate`` command in a subprocess, and URLs of
databases that are missing, unreachable or hanging."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

SMSGATE = [sys.executable, "-c", "import sys; from smsgate.cli import main; sys.exit(main())"]


def smsgate(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``smsgate ARGS`` as a user would, with only ``env`` on top of a clean environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SMSGATE_", "TWILIO_"))}
    return subprocess.run(
        [*SMSGATE, *args], env=base | env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def closed_port() -> int:
    """A localhost port nobody listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A localhost port that accepts connections and never answers: a hung database server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    server.close()
