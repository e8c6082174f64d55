"""The two things every test that talks HTTP needs: a free loopback port, and Argo CD's headers."""

from __future__ import annotations

import socket

SECRET = "Bearer test-shared-secret"  # what the test Argo CD proxy and every test backend share
APPLICATION = "argocd:guestbook"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it; a race with another binder is harmless
    in practice on loopback, and a server that loses it fails loudly at bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def argocd_headers(
    *,
    user: str = "alice",
    application: str = APPLICATION,
    project: str = "default",
    secret: str | None = SECRET,
    **extra: str,
) -> dict[str, str]:
    """What Argo CD's proxy sends the backend for a user of ``application`` (``secret=None``: none).
    ``extra`` adds headers, spelled with underscores: ``Argocd_User_Id="u-1"``."""
    headers = {
        "Argocd-Application-Name": application,
        "Argocd-Project-Name": project,
        "Argocd-Username": user,
        "Argocd-Namespace": "argocd",
    }
    if secret is not None:
        headers["Authorization"] = secret
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    return headers
