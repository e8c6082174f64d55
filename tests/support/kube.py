"""A real Kubernetes control plane on loopback for tests: etcd + kube-apiserver (+ controllers).

Tests get the session's cluster from the ``kube_cluster`` fixture (``tests/conftest.py``; controllers and
scheduler running) or ``static_kube_cluster`` (``tests/kube/conftest.py``; etcd + apiserver only). Elsewhere
(evals, benchmarks) it has the shape of every test server (``tests/support/server.py``)::

    with KubeCluster(workdir, controllers=False) as cluster: ...

What you get (:class:`KubeCluster`):

- ``url``: the apiserver's https URL on 127.0.0.1; ``ca_path``: the CA that signed its certificate.
- ``admin_kubeconfig``: a kubeconfig (user ``admin`` in ``system:masters``, token auth).
- ``service_account_token(namespace, name)``: a real token from the TokenRequest API, and
  ``kubeconfig_for_token(token, path)`` to wrap it into a kubeconfig.
- ``kubectl(*args)``: runs ``kubectl --kubeconfig <admin>`` (e.g. ``apply --dry-run=server -f x.yaml``).
- ``create(obj)``, ``apply_yaml(text)``, ``write_status(obj)``, ``get(...)``, ``delete(...)``: plain
  REST helpers with API discovery, so any served kind works (CRDs included).

The apiserver runs with ``--token-auth-file`` and ``--authorization-mode=RBAC``; service-account keys are
generated so SA tokens verify. The Argo CD ``Application`` and ``AppProject`` CRDs
(``tests/support/crds/``) are installed at start. The ``ServiceAccount`` admission plugin is disabled so tests can create Pods
directly without token Secrets (which is not what is under test). The node lifecycle controller is
disabled: our Nodes are fakes (see ``tests/support/kubelet.py``) that never heartbeat, and we don't
want them tainted and their Pods evicted mid-test.

Binaries: kube-apiserver/-controller-manager/-scheduler v1.20.2 built by ``make kube-bin`` into
``$ARGOCD_ASSISTANT_CACHE/kubernetes-1.20.2/bin`` and Debian's ``etcd``. When they are missing the
cluster FAILS to start (never skips) with a message saying how to build them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .net import free_port
from .server import Server

KUBE_VERSION = "1.20.2"
CRD_DIR = Path(__file__).parent / "crds"


def kube_bin_dir() -> Path:
    cache = Path(os.environ.get("ARGOCD_ASSISTANT_CACHE", Path.home() / ".cache" / "argocd-assistant"))
    return cache / f"kubernetes-{KUBE_VERSION}" / "bin"


# ---- certificates -----------------------------------------------------------------------------


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(common_name: str = "argocd-assistant-test-ca") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_serving_cert(
    ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate, common_name: str, dns: list[str], ips: list[str]
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


# ---- the cluster ------------------------------------------------------------------------------


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class KubeCluster(Server):
    """A control plane in ``workdir``: ``with KubeCluster(workdir) as cluster`` (or ``.start()`` / ``.stop()``).
    ``controllers``: run kube-controller-manager (ReplicaSets, Pods, tokens); ``scheduler``: bind Pods."""

    workdir: Path
    controllers: bool = True
    scheduler: bool = False
    url: str = field(default="", init=False)
    ca_path: Path = field(default=Path(), init=False)
    ca_pem: bytes = field(default=b"", init=False)
    admin_token: str = field(default="", init=False)
    admin_kubeconfig: Path = field(default=Path(), init=False)
    _procs: list[_Proc] = field(default_factory=list, init=False)
    _client: httpx.Client | None = field(default=None, init=False)
    _resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict, init=False)

    # -- lifecycle --

    def start(self) -> KubeCluster:
        bindir = kube_bin_dir()
        etcd = shutil.which("etcd") or "/usr/bin/etcd"
        missing = [
            str(bindir / b)
            for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
            if not (bindir / b).is_file()
        ]
        if not Path(etcd).is_file():
            missing.append("etcd")
        if missing:
            raise RuntimeError(f"kube binaries missing ({', '.join(missing)}): run `make kube-bin` first")
        try:
            self._start(etcd, bindir, scheduler=self.scheduler)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self.workdir / f"{name}.log"
        out = log.open("wb")
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()
        self._procs.append(_Proc(name, popen, log))

    def _check_alive(self) -> None:
        for proc in self._procs:
            if proc.popen.poll() is not None:
                tail = proc.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{tail}")

    def _start(self, etcd: str, bindir: Path, *, scheduler: bool) -> None:
        wd = self.workdir
        wd.mkdir(parents=True, exist_ok=True)
        # etcd: tmpfs when available; fsync on a real disk makes the apiserver crawl on a busy CI box.
        shm = Path("/dev/shm")
        data_dir = Path(tempfile.mkdtemp(prefix="etcd-", dir=shm if shm.is_dir() else wd))
        self._etcd_data = data_dir
        client_port, peer_port = free_port(), free_port()
        self._spawn(
            "etcd",
            [
                etcd,
                "--name",
                "default",
                "--data-dir",
                str(data_dir),
                "--listen-client-urls",
                f"http://127.0.0.1:{client_port}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{client_port}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer_port}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{peer_port}",
                "--log-level",
                "warn",
            ],
        )

        ca_key, ca_cert = make_ca()
        srv_key, srv_cert = make_serving_cert(
            ca_key,
            ca_cert,
            "kube-apiserver",
            ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            ["127.0.0.1"],
        )
        sa_key = _key()
        self.ca_pem = _pem_cert(ca_cert)
        self.ca_path = wd / "ca.crt"
        self.ca_path.write_bytes(self.ca_pem)
        (wd / "apiserver.crt").write_bytes(_pem_cert(srv_cert))
        (wd / "apiserver.key").write_bytes(_pem_key(srv_key))
        (wd / "sa.key").write_bytes(_pem_key(sa_key))
        (wd / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.admin_token = secrets.token_hex(24)
        # token,user,uid,"groups": admin is a cluster admin through the system:masters group.
        (wd / "tokens.csv").write_text(f'{self.admin_token},admin,admin-uid,"system:masters"\n')

        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        self._spawn(
            "kube-apiserver",
            [
                str(bindir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{client_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                "--insecure-port=0",
                f"--tls-cert-file={wd / 'apiserver.crt'}",
                f"--tls-private-key-file={wd / 'apiserver.key'}",
                f"--client-ca-file={self.ca_path}",
                f"--token-auth-file={wd / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={wd / 'sa.pub'}",
                f"--service-account-signing-key-file={wd / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--api-audiences=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.0.0.0/16",  # room for the 1,000-resource benchmark's Services
                "--disable-admission-plugins=ServiceAccount",
                "--allow-privileged=true",
                "--kubelet-preferred-address-types=InternalIP",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                f"--cert-dir={wd / 'certs'}",
                "--v=0",
            ],
        )
        self.admin_kubeconfig = self.kubeconfig_for_token(
            self.admin_token, wd / "admin.kubeconfig", user="admin"
        )
        self._client = httpx.Client(
            base_url=self.url,
            verify=ssl.create_default_context(cafile=str(self.ca_path)),
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        self._wait_ready()

        if self.controllers:
            self._spawn(
                "kube-controller-manager",
                [
                    str(bindir / "kube-controller-manager"),
                    f"--kubeconfig={self.admin_kubeconfig}",
                    "--leader-elect=false",
                    "--port=0",
                    "--secure-port=0",
                    f"--service-account-private-key-file={wd / 'sa.key'}",
                    f"--root-ca-file={self.ca_path}",
                    "--controllers=*,-nodelifecycle,-csrsigning,-csrapproving,-csrcleaner,-bootstrapsigner,-tokencleaner",
                    "--concurrent-deployment-syncs=2",
                    "--concurrent-replicaset-syncs=2",
                    "--v=0",
                ],
            )
        if scheduler:
            self._spawn(
                "kube-scheduler",
                [
                    str(bindir / "kube-scheduler"),
                    f"--kubeconfig={self.admin_kubeconfig}",
                    "--leader-elect=false",
                    "--port=0",
                    "--secure-port=0",
                    "--v=0",
                ],
            )
        for crd in sorted(CRD_DIR.glob("*.yaml")):  # Application, AppProject
            self.apply_yaml(crd.read_text())
        self._wait_for(lambda: self._served("argoproj.io/v1alpha1", "Application"), "Application CRD served")
        self._wait_for(lambda: self._served("argoproj.io/v1alpha1", "AppProject"), "AppProject CRD served")
        if self.controllers:
            # The serviceaccount controller makes `default` in each namespace: proof controllers run.
            self._wait_for(
                lambda: self.get("v1", "ServiceAccount", "default", "default") is not None,
                "controller-manager running (default ServiceAccount)",
            )

    def _wait_for(self, check: Any, what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.2)

    def _wait_ready(self) -> None:
        def ready() -> bool:
            assert self._client is not None
            return self._client.get("/readyz").status_code == 200

        self._wait_for(ready, "kube-apiserver /readyz", timeout=120)

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        for proc in reversed(self._procs):
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in reversed(self._procs):
            try:
                proc.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
        self._procs.clear()
        data = getattr(self, "_etcd_data", None)
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)

    # -- kubeconfig / tokens --

    def kubeconfig_for_token(
        self, token: str, path: Path, *, user: str = "user", server: str | None = None
    ) -> Path:
        """A kubeconfig for ``token``; ``server`` reaches the apiserver another way (a relay)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {
                        "server": server or self.url,
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": user}}],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def service_account_token(
        self, namespace: str, name: str, *, audiences: list[str] | None = None, expiration_s: int = 3600
    ) -> str:
        """A TokenRequest token for an existing ServiceAccount (created here if missing)."""
        if self.get("v1", "ServiceAccount", name, namespace) is None:
            self.create(
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": namespace},
                }
            )
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": audiences or ["https://kubernetes.default.svc"],
                "expirationSeconds": expiration_s,
            },
        }
        response = self.http.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", json=body)
        response.raise_for_status()
        return str(response.json()["status"]["token"])

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise RuntimeError("kubectl not found on PATH (Debian package `kubectl`)")
        return subprocess.run(
            [kubectl, "--kubeconfig", str(self.admin_kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    # -- REST helpers (sync: they run in test code, not on the backend's event loop) --

    @property
    def http(self) -> httpx.Client:
        assert self._client is not None, "cluster not started"
        return self._client

    def _group_resources(self, api_version: str) -> list[dict[str, Any]]:
        cached = self._resources.get(api_version)
        if cached is None:
            prefix = "/api/" if "/" not in api_version else "/apis/"
            response = self.http.get(prefix + api_version)
            if response.status_code == 404:
                return []
            response.raise_for_status()
            cached = list(response.json().get("resources", []))
            if cached:
                self._resources[api_version] = cached
        return cached

    def _served(self, api_version: str, kind: str) -> bool:
        self._resources.pop(api_version, None)
        return any(r["kind"] == kind and "/" not in r["name"] for r in self._group_resources(api_version))

    def path_for(
        self, api_version: str, kind: str, namespace: str | None = None, name: str | None = None
    ) -> str:
        for res in self._group_resources(api_version):
            if res["kind"] == kind and "/" not in res["name"]:
                prefix = "/api/" if "/" not in api_version else "/apis/"
                path = prefix + api_version
                if res["namespaced"]:
                    path += f"/namespaces/{namespace or 'default'}"
                path += "/" + str(res["name"])
                return path + (f"/{name}" if name else "")
        raise KeyError(f"{api_version} {kind} is not served")

    def create(self, obj: Mapping[str, Any], *, status: bool = False) -> dict[str, Any]:
        """Create ``obj`` (``status=True`` also writes its ``status`` through ``/status``)."""
        meta = obj["metadata"]
        path = self.path_for(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        response = self.http.post(path, json=dict(obj))
        if response.status_code >= 400:
            raise RuntimeError(
                f"create {obj['kind']} {meta.get('name')}: {response.status_code} {response.text}"
            )
        created: dict[str, Any] = response.json()
        if status and "status" in obj:
            created = self.write_status({**created, "status": obj["status"]})
        return created

    def write_status(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Replace the ``status`` of an existing object through its ``/status`` subresource."""
        meta = obj["metadata"]
        path = self.path_for(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]) + "/status"
        for _attempt in range(10):  # controllers may update the object between our GET and PUT
            current = self.http.get(path.removesuffix("/status"))
            current.raise_for_status()
            body = current.json()
            body["status"] = obj["status"]
            response = self.http.put(path, json=body)
            if response.status_code != 409:
                break
        if response.status_code >= 400:
            raise RuntimeError(f"status {obj['kind']} {meta['name']}: {response.status_code} {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        response = self.http.get(self.path_for(api_version, kind, namespace, name))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        response = self.http.delete(self.path_for(api_version, kind, namespace, name))
        if response.status_code not in (200, 202, 404):
            response.raise_for_status()

    def apply_yaml(self, text: str) -> list[dict[str, Any]]:
        """Create every document in ``text`` (already existing objects are left as they are)."""
        created = []
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            meta = doc["metadata"]
            if self.get(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace")) is None:
                created.append(self.create(doc, status="status" in doc))
        return created

    def merge_patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        response = self.http.patch(
            self.path_for(api_version, kind, namespace, name),
            json=dict(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if response.status_code >= 400:
            raise RuntimeError(f"patch {kind} {name}: {response.status_code} {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def ensure_namespace(self, name: str) -> None:
        if self.get("v1", "Namespace", name) is None:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def put_project(self, name: str, spec: Mapping[str, Any] | None = None, namespace: str = "argocd") -> None:
        """Create or replace AppProject ``name`` in the control plane; the default spec permits every
        destination and cluster-scoped kind, like Argo CD's own ``default`` project."""
        self.ensure_namespace(namespace)
        body: dict[str, Any] = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": name, "namespace": namespace},
            "spec": dict(spec)
            if spec is not None
            else {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            },
        }
        current = self.get("argoproj.io/v1alpha1", "AppProject", name, namespace)
        if current is None:
            self.create(body)
            return
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        path = self.path_for("argoproj.io/v1alpha1", "AppProject", namespace, name)
        self.http.put(path, json=body).raise_for_status()


def running_cluster(workdir: Path, *, controllers: bool = True, scheduler: bool = False) -> KubeCluster:
    """The same as ``KubeCluster(...)`` (a context manager); kept for ``bench/`` and ``evals/``."""
    return KubeCluster(workdir, controllers=controllers, scheduler=scheduler)
