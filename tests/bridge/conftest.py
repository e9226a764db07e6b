"""A real ``redis-server`` on a free loopback port for the bridge's tests.

``redis_server`` (one per module, emptied before each test) runs Debian's ``redis-server --port N
--save '' --appendonly no`` in a temporary directory, killed after; ``redis_factory`` starts more
(e.g. with an append-only file, to be killed and restarted mid-run). Without the binary the tests
are skipped with the reason (``.ci/run`` installs it).
"""

from __future__ import annotations

import collections.abc as c
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

BINARY = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; ``kill`` and ``start`` again on the same port and directory.

    :param cert: a PEM certificate with its key beside it (``key.pem``): listen with TLS only.
    """

    def __init__(self, directory: Path, *extra: str, cert: Path | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.extra = extra
        self.cert = cert
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.cert is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.cert}"
        return f"redis://127.0.0.1:{self.port}/0"

    def _args(self) -> list[str]:
        if self.cert is None:
            return ["--port", str(self.port)]
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.cert),
                "--tls-key-file", str(self.cert.with_name("key.pem")), "--tls-ca-cert-file", str(self.cert),
                "--tls-auth-clients", "no"]

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        if self.cert is None:
            return sock
        import ssl

        context = ssl.create_default_context(cafile=str(self.cert))
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    def start(self) -> None:
        assert BINARY is not None
        self.process = subprocess.Popen(
            [BINARY, *self._args(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with self._connect() as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer within 10 s")

    def command(self, *args: str) -> bytes:
        """One command over a raw socket (a reply of one line or bulk string), for fixtures."""
        parts = [f"*{len(args)}\r\n".encode()] + [f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args]
        with self._connect() as sock:
            sock.sendall(b"".join(parts))
            return sock.recv(65536)

    def kill(self) -> None:
        """SIGKILL, as a crash (no shutdown save)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture(scope="module")
def _module_server(tmp_path_factory: pytest.TempPathFactory) -> c.Iterator[RedisServer]:
    if BINARY is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; CI installs it)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_server(_module_server: RedisServer) -> RedisServer:
    """The module's server, emptied."""
    assert _module_server.command("FLUSHALL").startswith(b"+OK")
    return _module_server


@pytest.fixture
def redis_factory(tmp_path: Path) -> c.Iterator[c.Callable[..., RedisServer]]:
    """Start a server of its own with extra arguments; every one is killed after the test."""
    if BINARY is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; CI installs it)")
    servers: list[RedisServer] = []

    def make(*extra: str, cert: Path | None = None) -> RedisServer:
        directory = tmp_path / f"redis{len(servers)}"
        directory.mkdir()
        server = RedisServer(directory, *extra, cert=cert)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill()


@pytest.fixture
def tls_cert(tmp_path: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (``cert.pem``, ``key.pem``), made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (needed to make a test certificate)")
    cert = tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp_path / "key.pem"), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert
