"""A real kube-apiserver (tests/support/kube.py) for the benchmarks, behind a TCP relay that adds a
fixed latency to every request, as a remote cluster's round trip would."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.support.kube import KubeCluster, running_cluster
from tests.support.kubelet import FakeKubelet


class DelayProxy:
    """A TCP relay that delivers every byte a client sends ``delay_s`` after it arrived: latency,
    not a throughput limit. Chunks are pipelined, so many HTTP/2 requests on one connection are
    each late by ``delay_s`` (as over a real link), not by ``delay_s`` times their position, which a
    relay that sleeps before each write would make them. TLS passes through untouched."""

    def __init__(self, target_host: str, target_port: int, *, delay_s: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-delay-proxy")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay proxy did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _delayed(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((time.monotonic() + self.delay_s, data))
        finally:
            queue.put_nowait(None)
            with contextlib.suppress(ConnectionError, OSError):
                await delivering
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            await asyncio.gather(self._delayed(reader, up_writer), self._pipe(up_reader, writer))

    def stop(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def kubeconfig_via(cluster: KubeCluster, proxy: DelayProxy, path: Path) -> Path:
    config = yaml.safe_load(cluster.admin_kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def kube(workdir: Path) -> Iterator[tuple[KubeCluster, FakeKubelet, DelayProxy, Path]]:
    """The apiserver (no controllers: objects stay as written), the fake kubelet for logs, and a
    kubeconfig that reaches the apiserver through the delay proxy."""
    workdir.mkdir(parents=True, exist_ok=True)
    with running_cluster(workdir / "cluster", controllers=False) as cluster:
        kubelet = FakeKubelet().start()
        host, port = cluster.url.removeprefix("https://").split(":")
        proxy = DelayProxy(host, int(port))
        try:
            yield cluster, kubelet, proxy, kubeconfig_via(cluster, proxy, workdir / "delayed.kubeconfig")
        finally:
            proxy.stop()
            kubelet.stop()
