"""Throwaway Redis on 127.0.0.1 for tests, demos and benchmarks: a server, or a cluster."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["RedisCluster", "RedisServer"]


class RedisServer:
    """A real ``redis-server`` on a free port of 127.0.0.1, in a directory of its own.

    ::

        with RedisServer() as redis:
            limiter = ss.RedisRateLimiter(redis.url, rate=25)

    Raises ``FileNotFoundError`` when no ``redis-server`` is on the PATH. Nothing is
    saved to disk; ``stop()`` kills it and ``start()`` starts it again on the same port.
    """

    def __init__(self, workdir: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.binary = binary
        self._tmp = tempfile.TemporaryDirectory() if workdir is None else None
        self.workdir = Path(self._tmp.name) if self._tmp is not None else workdir
        self._started = False
        self._choose_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def _choose_port(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait (up to 10 s) until it accepts connections.

        The port was free when chosen, but another process can take it before the
        server binds it: the server then exits, or another one answers there. So this
        waits for the server's own process id in ``INFO``; on a first start it tries
        another free port, on a restart (which must keep the port) it raises.
        """
        deadline = time.monotonic() + 10
        while True:
            self.proc = subprocess.Popen(
                [
                    self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", str(self.workdir), "--save", "", "--appendonly", "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            while self.proc.poll() is None and time.monotonic() < deadline:
                if _process_id(self.port) == self.proc.pid:
                    self._started = True
                    return
                time.sleep(0.02)
            self.stop()
            if self._started or time.monotonic() >= deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            self._choose_port()  # taken meanwhile: another one

    def stop(self) -> None:
        """Kill the server (its data is gone)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


def _process_id(port: int) -> int | None:
    """The process id of the redis-server answering on ``port`` (None: none answers)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"INFO server\r\n")
            answer = b""
            while b"process_id:" not in answer or not answer.endswith(b"\r\n"):
                if len(answer) > 65536:  # not a Redis INFO answer (another program's port)
                    return None
                chunk = s.recv(65536)
                if not chunk:
                    return None
                answer += chunk
    except OSError:
        return None
    for line in answer.decode("latin-1").splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    return None


def _free_ports(count: int) -> list[int]:
    """``count`` free ports of 127.0.0.1 whose cluster bus ports (+10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535 or port in ports:
            continue
        try:
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        ports.append(port)
    return ports


class RedisCluster:
    """A real three-node Redis Cluster on 127.0.0.1 (no replicas), in a directory of its own.

    ::

        with RedisCluster() as cluster:
            limiter = ss.RedisRateLimiter(cluster.url, rate=25, cluster=True)

    Starts ``nodes`` ``redis-server --cluster-enabled yes`` processes, joins them with
    ``redis-cli --cluster create`` and waits (up to ``timeout`` seconds) for
    ``cluster_state:ok`` on every node. Raises ``FileNotFoundError`` when
    ``redis-server`` or ``redis-cli`` is not on the PATH. Nothing is saved to disk.
    """

    def __init__(self, nodes: int = 3, timeout: float = 20.0) -> None:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise FileNotFoundError("redis-server" if server is None else "redis-cli")
        self.server, self.cli, self.timeout = server, cli, timeout
        self.ports = _free_ports(nodes)
        self._tmp = tempfile.TemporaryDirectory()
        self.workdir = Path(self._tmp.name)
        #: A URL of one node: redis-py's RedisCluster discovers the others from it.
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0"
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the nodes, create the cluster and wait until it serves every slot."""
        for port in self.ports:
            node_dir = self.workdir / str(port)
            node_dir.mkdir(exist_ok=True)
            args = [
                self.server, "--port", str(port), "--bind", "127.0.0.1",
                "--dir", str(node_dir), "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no",
            ]  # fmt: skip
            self.procs.append(
                subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        deadline = time.monotonic() + self.timeout
        for port in self.ports:
            while not self._answers(port, "PING", "PONG"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start")
                time.sleep(0.02)
        created = subprocess.run(
            [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )  # fmt: skip
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]}")
        for port in self.ports:
            while not self._answers(port, "CLUSTER INFO", "cluster_state:ok"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
                time.sleep(0.05)

    def _answers(self, port: int, command: str, expected: str) -> bool:
        try:
            out = subprocess.run(
                [self.cli, "-h", "127.0.0.1", "-p", str(port), *command.split()],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return expected in out.stdout

    def stop(self) -> None:
        """Kill every node (the data is gone)."""
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()
        self.procs = []

    def __enter__(self) -> RedisCluster:
        try:
            self.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._tmp.cleanup()
