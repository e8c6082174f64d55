"""A stand-in kubelet that serves container logs, so the apiserver's real ``pods/log`` path is used.

The apiserver proxies ``GET /api/v1/namespaces/<ns>/pods/<pod>/log`` to
``https://<node InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>/containerLogs/<ns>/<pod>/<container>``
(with ``previous``, ``tailLines``, ``limitBytes``... passed through). Without
``--kubelet-certificate-authority`` it does not verify the kubelet's certificate, so a self-signed one
is enough. Use::

    kubelet = FakeKubelet().start(); node = kubelet.node("node-1"); cluster.create(node, status=True)
    kubelet.set_log("shop", "web-1", "app", "line 1\\nline 2\\n", previous=True)

(or ``kubelet.register_node(cluster, "node-1")``) and create Pods with ``spec.nodeName: node-1``.
"""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .kube import KubeCluster, _pem_cert, _pem_key, make_ca, make_serving_cert
from .server import Server


class FakeKubelet(Server):
    """The session's one is the ``fake_kubelet`` fixture; elsewhere ``with FakeKubelet() as kubelet``."""

    def __init__(self) -> None:
        self._logs: dict[tuple[str, str, str, bool], str] = {}
        self._lock = threading.Lock()
        self.requests: list[str] = []  # the paths+queries the apiserver asked for, for assertions
        self.answered: list[str] = []  # the same, once answered (after any log_delay_s)
        self.log_delay_s = 0.0  # > 0: every log request hangs this long first (a kubelet that does not answer)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> FakeKubelet:
        self._serve()
        return self

    def set_log(self, namespace: str, pod: str, container: str, text: str, *, previous: bool = False) -> None:
        with self._lock:
            self._logs[(namespace, pod, container, previous)] = text

    def log(self, namespace: str, pod: str, container: str, previous: bool) -> str | None:
        with self._lock:
            return self._logs.get((namespace, pod, container, previous))

    def node(self, name: str) -> dict[str, Any]:
        """A Ready ``Node`` object (with status) whose kubelet endpoint is this server."""
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            },
            "spec": {},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "fake kubelet is ready",
                    }
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.20.2",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "containerRuntimeVersion": "fake://1",
                    "kernelVersion": "",
                    "osImage": "",
                    "kubeProxyVersion": "",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                },
            },
        }

    def register_node(self, cluster: KubeCluster, name: str) -> dict[str, Any]:
        """Create a Ready, untainted Node pointing at this kubelet (idempotent)."""
        node = self.node(name)
        if cluster.get("v1", "Node", name) is None:
            cluster.create(node)
        cluster.write_status(node)
        # The TaintNodesByCondition admission plugin adds not-ready:NoSchedule at create; the node
        # lifecycle controller (disabled in tests) would lift it. Lift it ourselves.
        return cluster.merge_patch("v1", "Node", name, None, {"spec": {"taints": None}})

    def _serve(self) -> None:
        kubelet = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kubelet.requests.append(self.path)
                if kubelet.log_delay_s:
                    time.sleep(kubelet.log_delay_s)
                url = urlsplit(self.path)
                parts = [unquote(p) for p in url.path.split("/") if p]
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self._reply(404, "not found\n")
                    return
                query = parse_qs(url.query)
                previous = query.get("previous", ["false"])[0] == "true"
                text = kubelet.log(parts[1], parts[2], parts[3], previous)
                if text is None:
                    which = "previous terminated container" if previous else "container"
                    self._reply(400, f'{which} "{parts[3]}" in pod "{parts[2]}" not found\n')
                    return
                lines = text.splitlines(keepends=True)
                if "tailLines" in query:
                    tail = int(query["tailLines"][0])
                    lines = lines[-tail:] if tail > 0 else []
                body = "".join(lines)
                if "limitBytes" in query:
                    body = body.encode()[: int(query["limitBytes"][0])].decode(errors="ignore")
                self._reply(200, body)

            def _reply(self, status: int, body: str) -> None:
                kubelet.answered.append(self.path)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                return

        ca_key, ca_cert = make_ca("fake-kubelet-ca")
        key, cert = make_serving_cert(ca_key, ca_cert, "fake-kubelet", ["localhost"], ["127.0.0.1"])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="fake-kubelet-") as certdir:  # only needed for the load
            (Path(certdir) / "tls.crt").write_bytes(_pem_cert(cert))
            (Path(certdir) / "tls.key").write_bytes(_pem_key(key))
            context.load_cert_chain(Path(certdir) / "tls.crt", Path(certdir) / "tls.key")
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="fake-kubelet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

