"""The sandbox LLM as a process of its own, for the benchmarks that must not share a core
(and an interpreter lock) with the worker they measure."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sandbox_llm(*options: str, timeout_s: float = 30.0
                      ) -> tuple[subprocess.Popen[bytes], str]:
    """``enrich sandbox llm OPTIONS`` on a free loopback port, once it answers; its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "enrich.cli", "sandbox", "llm", "--port",
                             str(port), *options],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(url + "/health", timeout=1)
            return proc, url
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("the sandbox LLM did not start") from None
            time.sleep(0.1)
