"""Config: YAML + ASSISTANT_* env, unknown keys and bad values stop start-up with one line naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant_backend.config import CONFIG_ENV, ConfigError, ProviderName, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("ASSISTANT_"):
            monkeypatch.delenv(key)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_yaml_file_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "provider: agents\nllama_stack:\n  url: http://ls:8321/\n  temperature: 0.5\n"
                           "auth:\n  secret: abc\n")
    monkeypatch.setenv("ASSISTANT_LLAMA_STACK__TEMPERATURE", "0.9")
    settings = load_settings(path)
    assert settings.provider is ProviderName.AGENTS
    assert settings.llama_stack.url == "http://ls:8321"  # trailing slash normalised
    assert settings.llama_stack.temperature == 0.9  # env wins over the file
    assert settings.auth.resolved_secret() == "abc"


def test_secret_files_win(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("Bearer from-file\n")
    (tmp_path / "key").write_text("sk-file")
    path = write(tmp_path, f"auth:\n  secret: inline\n  secret_file: {tmp_path / 'secret'}\n"
                           f"llama_stack:\n  api_key_file: {tmp_path / 'key'}\n")
    settings = load_settings(path)
    assert settings.auth.resolved_secret() == "Bearer from-file"
    assert settings.llama_stack.resolved_api_key() == "sk-file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("auth: {secret: a}\nllama_stack: {urll: http://x}\n", "config error: llama_stack.urll: unknown key"),
        ("auth: {secret: a}\nproviderr: agents\n", "config error: providerr: unknown key"),
        ("auth: {secret: a}\nprovider: langchain\n", "config error: provider: Input should be 'responses' or 'agents'"),
        ("auth: {secret: a}\nllama_stack: {temperature: 7}\n", "config error: llama_stack.temperature: Input should be less than or equal to 2"),
        ("auth: {secret: a}\nllama_stack: {url: ftp://x}\n", "config error: llama_stack.url: must start with http:// or https://"),
        ("auth: {secret: a}\nserver: {port: 0}\n", "config error: server.port: Input should be greater than or equal to 1"),
        ("llama_stack: {url: http://x}\n", "config error: auth.secret (or auth.secret_file) is required"),
    ],
)
def test_bad_config_is_one_line_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text))
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.yaml")
    path = write(tmp_path, f"auth: {{secret: a}}\ninstructions_file: {tmp_path / 'missing.md'}\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(path)


def test_insecure_mode_allows_no_secret(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "auth: {insecure_allow_no_secret: true}\n"))
    assert settings.auth.resolved_secret() is None


def test_built_in_instructions_cover_the_essentials(tmp_path: Path) -> None:
    text = load_settings(write(tmp_path, "auth: {secret: a}\n")).instructions
    for needle in ("evidence", "Git", "kubectl edit", "not enough"):
        assert needle in text


def test_cli_prints_schema_and_rejects_bad_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    schema = subprocess.run([sys.executable, "-m", "assistant_backend", "--print-config-schema"],
                            capture_output=True, text=True, check=True)
    properties = json.loads(schema.stdout)["properties"]
    assert {"provider", "llama_stack", "auth", "kubernetes", "context", "server", "limits"} <= set(properties)
    bad = subprocess.run([sys.executable, "-m", "assistant_backend", "--config",
                          str(write(tmp_path, "auth: {secret: a}\nbogus: 1\n"))], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "config error: bogus: unknown key"
