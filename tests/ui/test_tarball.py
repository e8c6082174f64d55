"""The UI tarball installs by the extension-installer's layout and Argo CD finds the bundle."""

from __future__ import annotations

import re
import subprocess
import tarfile
from pathlib import Path

from tests.support.hostpage import extension_files
from tests.support.installer import install, ui_tarball, ui_version

EXTENSION_JS = re.compile(r"^extension(.*)\.js$")


def test_tarball_has_only_resources_at_top_level() -> None:
    with tarfile.open(ui_tarball()) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert {n.split("/", 1)[0] for n in names} == {"resources"}, names
    for m in members:
        assert m.isfile() or m.isdir(), f"{m.name}: only files and folders"
        assert not m.name.startswith("/") and ".." not in m.name.split("/")
        assert m.uid == 0 and m.gid == 0 and m.mtime == 0, f"{m.name}: not reproducible"
    assert "resources/extension-assistant/extension-assistant.js" in names


def test_checksum_file_is_sha256sum_format() -> None:
    tarball = ui_tarball()
    checksum = tarball.with_name(tarball.name + ".sha256")
    line = checksum.read_text(encoding="utf-8")
    assert re.fullmatch(rf"[0-9a-f]{{64}}  extension-assistant-{re.escape(ui_version())}\.tar\n", line)
    subprocess.run(["sha256sum", "-c", checksum.name], cwd=tarball.parent, check=True, capture_output=True)


def test_installs_like_the_extension_installer(tmp_path: Path) -> None:
    extensions = tmp_path / "tmp-extensions"
    install(ui_tarball(), extensions, tmp_path / "work")
    served = extension_files(extensions)
    assert [p.relative_to(extensions).as_posix() for p in served] == [
        "resources/extension-assistant/extension-assistant.js"
    ]
    assert all(EXTENSION_JS.match(p.name) for p in served)
    text = served[0].read_text(encoding="utf-8")
    assert "registerResourceExtension" in text
    assert f"argocd-assistant UI extension {ui_version()}" in text


def test_installing_next_to_another_extension_keeps_both(tmp_path: Path) -> None:
    extensions = tmp_path / "tmp-extensions"
    other = extensions / "resources" / "extension-other"
    other.mkdir(parents=True)
    (other / "extension-other.js").write_text("/* other */", encoding="utf-8")
    install(ui_tarball(), extensions, tmp_path / "work")
    assert [p.name for p in extension_files(extensions)] == ["extension-assistant.js", "extension-other.js"]
