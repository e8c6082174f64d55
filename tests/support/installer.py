"""Install the UI tarball the way argocd-extension-installer does, for the tests.

The installer downloads EXTENSION_URL, checks it against EXTENSION_CHECKSUM_URL (sha256sum format)
when given, extracts it, requires a top-level `resources/` folder and copies its contents into
`/tmp/extensions/resources/`; argocd-server then serves every `^extension(.*)\\.js$` file found
under `/tmp/extensions/`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ui_version() -> str:
    version: str = json.loads((REPO / "extension-ui" / "package.json").read_text(encoding="utf-8"))["version"]
    return version


def ui_tarball() -> Path:
    """The built tarball; building it is `make ui`'s job (a prerequisite of `make test`)."""
    path = REPO / "dist" / f"extension-assistant-{ui_version()}.tar"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make ui` first")
    return path


def verify_checksum(tarball: Path) -> None:
    checksum_file = tarball.with_name(tarball.name + ".sha256")
    expected = {}
    for line in checksum_file.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        expected[name.strip()] = digest.strip()
    actual = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if expected.get(tarball.name) != actual:
        raise ValueError(f"checksum mismatch for {tarball.name}: {expected} != {actual}")


def install(tarball: Path, extensions_dir: Path, work_dir: Path) -> Path:
    """Unpack into `work_dir`, then copy `resources/*` into `<extensions_dir>/resources/`."""
    verify_checksum(tarball)
    unpack = work_dir / "unpacked"
    unpack.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(unpack, filter="data")
    resources = unpack / "resources"
    if not resources.is_dir():
        raise ValueError("the tarball has no top-level resources/ folder")
    target = extensions_dir / "resources"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(resources, target, dirs_exist_ok=True)
    return extensions_dir
