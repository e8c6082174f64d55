"""A real kube-apiserver (tests/support/kube.py) for the benchmarks, behind a TCP relay that adds a
fixed latency to every request, as a remote cluster's round trip would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.support.kube import KubeCluster, running_cluster
from tests.support.kubelet import FakeKubelet


class DelayProxy:
    """Relays TCP to ``target``; each chunk the client sends waits ``delay_s`` first (per connection,
    in order). TLS passes through untouched, so the apiserver's certificate still verifies."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.delay_s = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="delay-proxy")
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delayed: bool) -> None:
        try:
            while data := await reader.read(65536):
                if delayed and self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer, True), self._pipe(up_reader, writer, False))

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
        kubelet = FakeKubelet.start()
        host, port = cluster.url.removeprefix("https://").split(":")
        proxy = DelayProxy(host, int(port))
        try:
            yield cluster, kubelet, proxy, kubeconfig_via(cluster, proxy, workdir / "delayed.kubeconfig")
        finally:
            proxy.stop()
            kubelet.stop()
