"""Keep secrets out of what the model sees, and count every redaction.

Three layers, all applied before anything is rendered:

1. Structure: ``managedFields`` and the ``last-applied-configuration`` annotation are dropped (they
   repeat the spec, often including values that the live object has since moved to Secrets); a
   Secret keeps only metadata and its key names.
2. Names: env ``value``s whose variable name looks secret (PASSWORD, TOKEN, API_KEY...) are masked.
   Names are split into words so ``KEYCLOAK_URL`` or ``TOKENIZER`` are not mistaken for secrets.
3. Patterns in free text (logs, events, annotations, every string of an object): bearer tokens,
   JWTs, private-key blocks, well-known cloud/provider keys, ``user:password@`` in URLs and
   ``password=...`` style assignments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MASK = "[REDACTED]"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Words (after splitting a variable name) that make its value secret.
_SECRET_WORDS = frozenset(
    {
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "PASSPHRASE",
        "TOKEN",
        "TOKENS",
        "SECRET",
        "SECRETS",
        "KEY",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "PRIVATE",
        "AUTH",
        "COOKIE",
        "SESSION",
        "SALT",
        "DSN",
        "SIGNATURE",
        "CERT",
        "PEM",
        "BEARER",
        "JWT",
        "OAUTH",
    }
)
_SECRET_COMPOUNDS = ("APIKEY", "ACCESSKEY", "SECRETKEY", "PRIVATEKEY", "AUTHTOKEN", "CLIENTSECRET")
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def secret_looking_name(name: str) -> bool:
    """``DB_PASSWORD``, ``apiKey``, ``AWS_SECRET_ACCESS_KEY`` yes; ``KEYCLOAK_URL``, ``TOKENIZER`` no."""
    words = [w.upper() for w in _WORD_SPLIT.split(name) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    flat = "".join(words)
    return any(flat.endswith(compound) for compound in _SECRET_COMPOUNDS)


@dataclass(frozen=True, slots=True)
class _Pattern:
    name: str
    regex: re.Pattern[str]
    replace: str | Callable[[re.Match[str]], str]


def _keep_group1(match: re.Match[str]) -> str:
    return f"{match.group(1)}{MASK}"


_SECRET_KEY_WORDS = (
    r"password|passwd|pwd|passphrase|secret|client[_-]?secret|token|access[_-]?token|refresh[_-]?token|"  # noqa: S105
    r"auth[_-]?token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|credentials?"
)

PATTERNS: tuple[_Pattern, ...] = (
    # PEM private keys (also an unterminated block, e.g. a log line cut by tailLines). Certificates
    # are public and kept.
    _Pattern(
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|.*\Z)",
            re.DOTALL,
        ),
        f"-----{MASK} PRIVATE KEY-----",
    ),
    _Pattern("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), MASK),
    # "Bearer <token>": tokens have digits; "bearer authentication failed" has none and stays.
    _Pattern(
        "bearer",
        re.compile(r"(\b[Bb]earer\s+)(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/-]{12,}=*"),
        _keep_group1,
    ),
    _Pattern("basic_auth", re.compile(r"(\b[Bb]asic\s+)[A-Za-z0-9+/]{12,}={0,2}"), _keep_group1),
    # scheme://user:password@host -> keep the user and host, drop the password.
    _Pattern(
        "url_credentials", re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s/@]+(?=@)"), _keep_group1
    ),
    _Pattern("aws_access_key_id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), MASK),
    _Pattern(
        "github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b"), MASK
    ),
    _Pattern("gitlab_token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"), MASK),
    _Pattern("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"), MASK),
    _Pattern("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MASK),
    _Pattern("stripe_key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b"), MASK),
    _Pattern("openai_key", re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}\b"), MASK),
    # password=..., "token": "...", api_key: ... (the value up to a delimiter). Requires the = or :
    # so prose like "password authentication failed" is left alone.
    _Pattern(
        "assignment",
        re.compile(
            r"""((?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_.-])*(?:"""
            + _SECRET_KEY_WORDS
            + r""")["']?\s*[:=]\s*["']?)"""
            r"""(?![\s"',;}\]]|\[REDACTED\]|\*+(?:[\s"',;}]|$))[^\s"',;}\]]+""",
            re.IGNORECASE,
        ),
        _keep_group1,
    ),
)


def redact_text(text: str) -> tuple[str, int]:
    """Mask secret-looking substrings; return the text and how many were masked."""
    count = 0
    for pattern in PATTERNS:
        text, n = pattern.regex.subn(pattern.replace, text)
        count += n
    return text, count


class Redactor:
    """Redacts Kubernetes objects, counting what it removed."""

    def __init__(self) -> None:
        self.count = 0

    def text(self, value: str) -> str:
        result, n = redact_text(value)
        self.count += n
        return result

    def obj(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        if obj.get("kind") == "Secret":
            return self._secret(obj)
        result = self._walk(obj, path=())
        assert isinstance(result, dict)
        return result

    def _secret(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = self._walk(dict(obj.get("metadata") or {}), path=("metadata",))
        keys = sorted(set(obj.get("data") or {}) | set(obj.get("stringData") or {}))
        self.count += len(keys)
        return {
            "apiVersion": obj.get("apiVersion", "v1"),
            "kind": "Secret",
            "metadata": meta,
            "type": obj.get("type"),
            "keys (values never shown)": keys,
        }

    def _walk(self, value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, Mapping):
            env_secret = (
                _is_env_entry(path)
                and isinstance(value.get("value"), str)
                and value.get("value") not in ("", MASK)
                and secret_looking_name(str(value.get("name", "")))
            )
            out: dict[str, Any] = {}
            for key, item in value.items():
                if key == "managedFields":
                    continue
                if key == LAST_APPLIED and path[-1:] == ("annotations",):
                    self.count += 1
                    continue
                if env_secret and key == "value":
                    out[key] = MASK
                    self.count += 1
                    continue
                out[key] = self._walk(item, (*path, str(key)))
            return out
        if isinstance(value, list):
            return [self._walk(item, path) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def _is_env_entry(path: tuple[str, ...]) -> bool:
    # Lists keep their parent's path, so an env entry's path ends with "env".
    return bool(path) and path[-1] == "env"
