"""Keep secrets out of what the model sees, and count every redaction.

Structure first, then text (docs/security.md, "Redaction"):

1. Objects: ``managedFields`` and the ``last-applied-configuration`` annotation are dropped (they
   repeat the spec, often with values since moved to Secrets); a Secret keeps only metadata and its
   key names. In *every* other mapping the model sees (env, ConfigMap data, annotations, Helm
   ``values``/``valuesObject``/``parameters`` of child Applications...) a value whose key looks secret
   is masked, and so is the ``value`` of every ``{name|key, value}`` pair whose name looks secret.
   Label values are kept (they select, they do not authenticate). In argv lists a secret-looking
   flag masks the element after it (``["--password", "x"]``), and ``-p<pw>`` is masked in a mysql
   command line. A string that parses as JSON is redacted as the structure it is.
2. Text (every string, logs, events, messages): long lines are cut first (:data:`MAX_LINE_CHARS`;
   the rest is masked and the cut said in place), then linear-time patterns (:mod:`.linear`) mask
   private-key blocks (also a body whose BEGIN line fell outside a log tail), bearer/basic
   credentials, JWTs, credentials in URLs of every form, provider tokens by their published prefixes,
   ``key = value`` assignments of secret-looking keys in any syntax, and secret flags in command lines.

A key "looks secret" by substring (PASS, PWD, SECRET, TOKEN, APIKEY, PRIVATE, CREDENTIAL, AUTH,
``-key-data``, ``.dockerconfigjson`` ...) or by word (KEY, PW, DSN, SIG ...), unless its last word
says it is about a secret rather than one (``password_policy``, ``token_ttl``, ``secretName``,
``PASSWORD_FILE``). False positives cost a little evidence; a miss costs a credential.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import linear
from ..linear import Match, Regex

MASK = "[REDACTED]"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_LINE_CHARS = 4096  # a longer line is cut here before any pattern runs
MAX_JSON_CHARS = 256 * 1024  # larger embedded JSON is treated as text

# ---- secret-looking names ---------------------------------------------------------------------

# Found anywhere in the name with separators removed: PGPASSWORD, DBPASS, APITOKEN, WEBHOOKSECRET.
_SECRET_SUBSTRINGS = (
    "PASS",
    "PWD",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "PRIVATE",
    "CREDENTIAL",
    "CREDS",
    "AUTH",
    "KEYDATA",
    "DOCKERCFG",
    "DOCKERCONFIGJSON",
    "COOKIE",
    "CONNSTR",
    "CONNECTIONSTRING",
    "ACCESSKEY",
    "SECRETKEY",
    "SIGNINGKEY",
    "ENCRYPTIONKEY",
    "MASTERKEY",
    "ACCOUNTKEY",
    "CLIENTKEY",
    "LICENSEKEY",
    "SSHKEY",
    "SESSIONKEY",
)
# Whole words of the name (split at separators and camelCase): KEYSTORE_PW, SSH_KEY, SENTRY_DSN.
_SECRET_WORDS = frozenset(
    {"PW", "KEY", "KEYS", "DSN", "SALT", "JWT", "BEARER", "SIG", "SIGNATURE", "HMAC", "OTP", "PEM", "PIN"}
)
# A last word that makes the name about a secret, not one: its value is a policy, a duration, a
# reference or a location. Checked after the secret test, so it can only make a name harmless.
_HARMLESS_LAST_WORDS = frozenset(
    {
        "POLICY",
        "POLICIES",
        "TTL",
        "TIMEOUT",
        "EXPIRY",
        "EXPIRES",
        "EXPIRATION",
        "LIFETIME",
        "SECONDS",
        "DURATION",
        "INTERVAL",
        "LENGTH",
        "LEN",
        "MIN",
        "MAX",
        "AGE",
        "COUNT",
        "SIZE",
        "FILE",
        "FILES",
        "PATH",
        "DIR",
        "DIRECTORY",
        "URL",
        "URI",
        "ENDPOINT",
        "HOST",
        "PORT",
        "ISSUER",
        "AUDIENCE",
        "TYPE",
        "KIND",
        "MODE",
        "METHOD",
        "METHODS",
        "ENABLED",
        "DISABLED",
        "REQUIRED",
        "NAME",
        "NAMES",
        "REF",
        "REFS",
        "KEYREF",
        "SELECTOR",
        "FORMAT",
        "ALGORITHM",
        "PROVIDER",
        "HEADER",
        "VERSION",
        "STRATEGY",
        "EMAIL",
        "USER",
        "USERNAME",
        "LABEL",
        "NAMESPACE",
        "DERIVATION",
        "HASH",
        "ERROR",
        "ERRORS",
        "EXCEPTION",
        "FAILURE",
        "FAILED",
        "DENIED",
        "STDIN",
        "FD",
        "ID",
        "IDS",
    }
)
# The "key" of a secretKeyRef / configMapKeyRef / items entry names a key, it is not one.
_HARMLESS_NAMES = frozenset({"KEY", "KEYS", "KEYREF", "TOKENREVIEW"})
_WORD_SPLIT = linear.compile(r"[A-Z]*[a-z0-9]+|[A-Z]+")


def _words(name: str) -> list[str]:
    return [m.group(0).upper() for m in _WORD_SPLIT.finditer(name[:256])]


# Ordinary words that happen to contain a secret substring.
_HARMLESS_SUBSTRINGS = ("TOKENIZ", "PASSPORT", "PASSTHROUGH", "PASSIVE", "BYPASS", "COMPASS", "PASSES")
# Words before the secret word that make the name about a secret: checksum/secret, tokens counts.
_HARMLESS_QUALIFIERS = frozenset({"CHECKSUM", "HASH", "DIGEST", "EXISTING", "MAX", "MIN", "NUM", "TOTAL"})
# A plural of a count ("prompt_tokens=812") is not a credential.
_HARMLESS_WORDS = frozenset({"TOKENS"})


def _secretish(word: str) -> bool:
    for harmless in _HARMLESS_SUBSTRINGS:
        word = word.replace(harmless, "")
    return word in _SECRET_WORDS or any(s in word for s in _SECRET_SUBSTRINGS)


def secret_looking_name(name: str) -> bool:
    """``DB_PASSWORD``, ``PGPASSWORD``, ``apiKey``, ``KEYSTORE_PW`` yes; ``token_ttl``, ``secretName`` no.

    The last word that looks secret decides, unless a word after it says the value is about the
    secret (``password_min_length``, ``refresh_token_expires_in``, ``PuTTY-User-Key-File-3``) or a
    word before it qualifies it (``checksum/secret``, ``max_tokens``).
    """
    words = [w for w in _words(name) if w not in _HARMLESS_WORDS]
    if not words:
        return False
    flat = "".join(words)
    if flat in _HARMLESS_NAMES:
        return False
    last = max((i for i, w in enumerate(words) if _secretish(w)), default=-1)
    if last < 0:
        for harmless in _HARMLESS_SUBSTRINGS:
            flat = flat.replace(harmless, "")
        if not any(s in flat for s in _SECRET_SUBSTRINGS):  # fused across words: DB_PASS + WORD...
            return False
        last = len(words) - 1
    if any(w in _HARMLESS_LAST_WORDS for w in words[last + 1 :]):
        return False
    return not any(w in _HARMLESS_QUALIFIERS for w in words[:last])


# Values no secret can be: literals, the scheme word of an Authorization value (the credential after
# it is masked on its own), and words that follow "token:" or "password:" in prose and config
# ("Failed to verify token: invalid token", "passwd: files systemd", "authn=oidc").
_NOT_A_SECRET_VALUES = frozenset(
    {
        "",
        "true",
        "false",
        "yes",
        "no",
        "null",
        "none",
        "nil",
        "on",
        "off",
        "~",
        "required",
        "optional",
        "bearer",
        "basic",
        "token",
        "digest",
        "negotiate",
        "oidc",
        "oauth",
        "oauth2",
        "ldap",
        "saml",
        "sso",
        "kerberos",
        "x509",
        "mtls",
        "tls",
        "jwt",
        "apikey",
        "password",
        "secret",
        "secrets",
        "configmap",
        "invalid",
        "expired",
        "missing",
        "failed",
        "failure",
        "error",
        "unauthorized",
        "forbidden",
        "denied",
        "permission",
        "unexpected",
        "empty",
        "unknown",
        "not",
        "is",
        "was",
        "has",
        "for",
        "the",
        "a",
        "an",
        "could",
        "cannot",
        "unable",
        "must",
        "should",
        "files",
        "compat",
        "systemd",
        "sss",
        "nis",
        "db",
        "via",
        "with",
        "from",
        "in",
        "of",
        "to",
        "and",
        "or",
        "at",
        "by",
        "if",
        "when",
        "stdin",
    }
)
_DIGEST = linear.compile(r"^(?:sha1|sha256|sha384|sha512|md5):[0-9a-fA-F]{32,128}$")


def _placeholder(value: str) -> bool:
    """Values that name where a secret comes from instead of holding it: masks, ``$VAR``,
    ``$(VAR)``, ``${VAR}``, ``<path:...>``, digests, prose words."""
    v = value.strip().strip("\"'\\").rstrip(":")
    return (
        v.lower() in _NOT_A_SECRET_VALUES
        or v in (MASK, "REDACTED")
        or set(v) <= {"*", "•"}
        or (v[:1] == "$" and (v[1:2].isalpha() or v[1:2] in ("_", "{", "(")) and len(v) < 128)
        or (v.startswith(("{{", "<")) and v.endswith(("}", ">")) and len(v) < 256)
        or _DIGEST.search(v) is not None
    )


def _structured(value: str) -> bool:
    """A value that holds its own parts (a connection string, a cookie header, a URL): redact it
    as text rather than as one secret, so the host and database stay readable."""
    return "=" in value.strip("=") or "://" in value or "@" in value


_NESTED = linear.compile(r"^[\"']?[A-Za-z][A-Za-z0-9 _.\-]{0,40}=")


def _redact_parts(value: str) -> str | None:
    """The value redacted part by part, or None when it should be masked whole: no part of it
    looked secret, unless it is itself the first ``key=`` of a list (the rest follows it)."""
    if not _structured(value) or len(value) >= MAX_LINE_CHARS:
        return None
    inner, n = redact_text(value)
    if n or MASK in inner or _NESTED.search(value):
        return inner
    return None


# ---- text patterns ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pattern:
    name: str
    regex: Regex
    # Returns the replacement for one match, or None to leave it as it is (not counted).
    mask: Callable[[Match], str | None]


def _whole(_m: Match) -> str:
    return MASK


def _keep(group: int) -> Callable[[Match], str | None]:
    """Keep everything before capture ``group``, mask the group, keep the rest of the match."""

    def mask(m: Match) -> str | None:
        whole = m.group(0) or ""
        start, end = m.start(group) - m.start(0), m.end(group) - m.start(0)
        if start < 0 or _placeholder(m.group(group) or ""):
            return None
        return f"{whole[:start]}{MASK}{whole[end:]}"

    return mask


def _named_value(key_group: int, value_group: int) -> Callable[[Match], str | None]:
    """Mask the value only when the key (or flag) really looks secret; a structured value is
    redacted part by part (and masked whole if none of its parts was)."""

    def mask(m: Match) -> str | None:
        if not secret_looking_name(m.group(key_group) or ""):
            return None
        value = m.group(value_group) or ""
        if _placeholder(value):
            return None
        whole = m.group(0) or ""
        start, end = m.start(value_group) - m.start(0), m.end(value_group) - m.start(0)
        inner = _redact_parts(value)
        return f"{whole[:start]}{MASK if inner is None else inner}{whole[end:]}"

    return mask


def _mixed(group: int, *, digits: bool = True) -> Callable[[Match], str | None]:
    """Mask random-looking strings only: upper and lower case (and a digit), so hex SHAs stay."""
    keep = _keep(group)

    def mask(m: Match) -> str | None:
        value = m.group(group) or ""
        random_looking = (
            any(c.isupper() for c in value)
            and any(c.islower() for c in value)
            and (not digits or any(c.isdigit() for c in value))
        )
        return keep(m) if random_looking else None

    return mask


def _random_run(m: Match) -> str | None:
    run = m.group(1) or ""
    segments = [seg for seg in run.split("/") if seg]
    # A path (/api/v1/namespaces/default/pods/MyPod1) is mostly lower-case words; base64 is not.
    if len(segments) >= 3 and 2 * sum(seg.islower() or seg.isdigit() for seg in segments) >= len(segments):
        return None
    return _mixed(1)(m)


def _bearer(m: Match) -> str | None:
    token = m.group(2) or ""
    words_only = token.isalpha()
    # "Bearer authentication failed" stays; a token has length, or digits and punctuation.
    if len(token) < 8 or (words_only and len(token) < 20) or _placeholder(token):
        return None
    return f"{m.group(1)}{MASK}"


_KEY_CHARS = r"[A-Za-z0-9_.\-]"
_SECRETISH = (
    r"(?:pass|pwd|secret|token|api[_.\-]?key|private|credential|creds|auth|key[_.\-]?data|dockercfg|"
    r"dockerconfigjson|cookie|conn[_.\-]?str|connection[_.\-]?string|key|pw|dsn|salt|sig|signature|jwt|"
    r"hmac|otp|pin|pem)"
)
# A value: quoted (may hold spaces; also \"escaped\" inside JSON strings), braced (ODBC Pwd={a;b}),
# or bare up to a delimiter. Never starts a structure.
_VALUE = (
    r"""(\\"(?:[^"\\\n]|\\[^"])*\\"|"[^"\n]*"|'[^'\n]*'|\{[^{}\n]*\}|\$\([^()\n]*\)|\$\{[^{}\n]*\}"""
    r"""|[^\s"',;&{}\[\]<>()|`\\]+)"""
)
# key = value, key: value, key => value, key:[value] (Go maps), \"key\":\"value\" (escaped JSON).
_SEPARATOR = r"""(\\?["']?[ \t]*(?::=|=>|:|=)[ \t]*\[?)"""

# Public material that looks random: certificates and public keys, SSH public keys, SRI hashes.
PUBLIC = linear.compile(
    r"-----BEGIN (?:CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY|PGP PUBLIC KEY BLOCK|X509 CRL|CERTIFICATE REQUEST)-----"
    r"(?s:.*?)-----END [A-Z0-9 ]+-----"
    r"|\b(?:ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-ssh-ed25519@openssh\.com) AAAA[A-Za-z0-9+/]+={0,3}"
    r"|\bsha(?:256|384|512)-[A-Za-z0-9+/]{40,}={0,2}"
)

PATTERNS: tuple[_Pattern, ...] = (
    # PEM/PGP private keys, to their END line; an unterminated block (cut by tailLines) to the end of
    # its base64 and header lines.
    _Pattern(
        "private_key",
        # BEGIN, then only what a key body holds (base64 and "Header: value" lines, separated by
        # newlines, escaped \n or spaces), then END if it is there: every character scanned is
        # consumed, so many BEGINs without an END stay linear (a lazy ".*?END" would rescan).
        linear.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"
            r"(?:(?:\\+r)?(?:\\+n|\r?\n| )(?:[A-Za-z0-9+/=]+|[A-Za-z\-]+: [^\n\\]*)?)*"
            r"(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----)?"
        ),
        lambda _m: f"-----{MASK} PRIVATE KEY-----",
    ),
    # The end of a key whose BEGIN line is not in the text (a log tail): the base64 lines before END.
    _Pattern(
        "private_key_tail",
        linear.compile(r"(?:[A-Za-z0-9+/=]+(?:\\+n|\r?\n))+-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"),
        lambda _m: f"{MASK}\n-----END PRIVATE KEY-----",
    ),
    # PuTTY .ppk: the private part follows "Private-Lines: N" up to the MAC.
    _Pattern(
        "putty_private_key",
        linear.compile(
            r"(?i)(Private-Lines:)[ \t]*\d*(?:(?:\\+r)?(?:\\+n|\r?\n)[A-Za-z0-9+/=]+)*"
            r"(?:(?:\\+r)?(?:\\+n|\r?\n)Private-MAC:[ \t]*[0-9a-f]*)?"
        ),
        lambda m: f"{m.group(1)} {MASK}",
    ),
    # The body of a key whose BEGIN line is not in the text: whole lines of base64.
    _Pattern(
        "base64_key_body",
        linear.compile(r"(?m)^([ \t]*(?:\S+ (?:stdout|stderr) [FP] )?)([A-Za-z0-9+/]{40,}={0,2})[ \t]*$"),
        _mixed(2, digits=False),
    ),
    _Pattern(
        "authorization_header",
        linear.compile(
            r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\[\"']?(?:(?:bearer|basic|token|digest|negotiate|"
            r"apikey|sso-key|ssws|splunk|gitlab-token)\s+)?)([^\s\"',;\]]+)"
        ),
        _keep(2),
    ),
    _Pattern(
        "bearer",
        linear.compile(r"(?i)(\b(?:bearer|ssws|apikey)\s+)([A-Za-z0-9._~+/][A-Za-z0-9._~+/\-]*=*)"),
        _bearer,
    ),
    _Pattern("basic_auth", linear.compile(r"(?i)(\bbasic\s+)([A-Za-z0-9+/]{12,}={0,2})"), _keep(2)),
    _Pattern("jwt", linear.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"), _whole),
    # scheme://user:password@host, also ://:password@ (redis) and passwords holding / or @: the
    # password runs to the last @ not right after a / (".../@v/" in a path is not the userinfo's end).
    _Pattern(
        "url_credentials",
        linear.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@\"'<>]*:)([^\s\"'<>]*[^\s\"'<>/])(@)"),
        _keep(2),
    ),
    # scheme://TOKEN@host: a token as the user name.
    _Pattern(
        "url_token_user",
        linear.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://)([A-Za-z0-9_\-]{16,})(@)"),
        _mixed(2, digits=True),
    ),
    # user:password@tcp(host) (Go MySQL DSN), scott/tiger@//host (Oracle), AKIA...:secret.
    _Pattern(
        "dsn_credentials",
        linear.compile(
            r"(\b[A-Za-z0-9_.\-]+:)([^\s@\"'/]+)(@(?:tcp|unix|udp)\()"
            r"|(\bthin:@?[A-Za-z0-9_.\-]+/)([^\s@\"']+)(@)"
            r"|(\b(?:AKIA|ASIA)[A-Z0-9]{16}:)([A-Za-z0-9/+=]{40})"
        ),
        lambda m: next(
            (f"{m.group(i)}{MASK}{m.group(i + 2) or ''}" for i in (1, 4) if m.group(i) is not None),
            f"{m.group(7)}{MASK}",
        ),
    ),
    # Go's URL parser echoes half a password containing "/" in its error.
    _Pattern("invalid_port", linear.compile(r"(invalid port \\?\"?:)([^\s\"\\]+)"), _keep(2)),
    # Chat webhooks carry their secret in the path.
    _Pattern(
        "webhook_url",
        linear.compile(
            r"(?i)(https://(?:hooks\.slack\.com/(?:services|workflows|triggers)|"
            r"(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks|[a-z0-9.\-]+\.webhook\.office\.com/webhookb2|"
            r"outlook\.office\.com/webhook|chat\.googleapis\.com/v1/spaces)/)([^\s\"'<>]+)"
        ),
        _keep(2),
    ),
    _Pattern(
        "aws_access_key_id",
        linear.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|A3T[A-Z0-9])[A-Z0-9]{16}\b"),
        _whole,
    ),
    _Pattern(
        "provider_token",
        linear.compile(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|"
            r"gl(?:pat|rt|dt|ptt|ft|imt|oas|cbt|soat|ffct|sdt|agent)-[A-Za-z0-9_\-]{20,}|GR1348941[A-Za-z0-9_\-]{20,}|"
            r"xox[abposre]-[A-Za-z0-9\-]{10,}|xapp-[A-Za-z0-9\-]{10,}|"
            r"AIza[0-9A-Za-z_\-]{35}|ya29\.[0-9A-Za-z_\-]{20,}|1//0[0-9A-Za-z_\-]{20,}|"
            r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{20,}|"
            r"sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{20,}|"
            r"hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{30,}|pypi-[A-Za-z0-9_\-]{50,}|dckr_pat_[A-Za-z0-9_\-]{20,}|"
            r"SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}|SK[0-9a-fA-F]{32}|"
            r"hv[sbr]\.[A-Za-z0-9_\-]{20,}|s\.[A-Za-z0-9]{24}|sha256~[A-Za-z0-9_\-]{40,}|"
            r"shp(?:at|ss|ca|pa)_[A-Fa-f0-9]{32}|dapi[0-9a-f]{32}|glsa_[A-Za-z0-9_]{32,}|glc_[A-Za-z0-9+/=_\-]{32,}|"
            r"lin_api_[A-Za-z0-9]{32,}|PMAK-[A-Za-z0-9\-]{30,}|sntrys_[A-Za-z0-9+/=_\-]{30,}|"
            r"do[opr]_v1_[a-f0-9]{64}|AGE-SECRET-KEY-1[0-9A-Z]{58}|ATATT3[A-Za-z0-9_\-=]{50,}|"
            r"[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})"
        ),
        _whole,
    ),
    # Password hashes are as good as passwords to an offline attack: bcrypt, sha-crypt, apr1.
    _Pattern(
        "password_hash",
        linear.compile(
            r"\$(?:2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|[156]\$[^\s:$]{0,16}\$[./A-Za-z0-9]{20,}|apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22})"
        ),
        _whole,
    ),
    # Command lines whose password flag has no secret-looking name: mysql -pX, docker login -p X,
    # sshpass -p X, 7z -pX, redis-cli -a X, curl -u user:X, htpasswd -b file user X, rabbitmqctl.
    _Pattern(
        "command_password",
        linear.compile(
            # Glued only for mysql (a space after -p makes it prompt), spaced for docker and sshpass.
            r"(\b(?:mysql[a-z]*|mariadb|7z|7za)\b[^\n]*?\s-p)([^\s\-\"'][^\s\"']*|\"[^\"\n]*\"|'[^'\n]*')"
            r"|(\b(?:docker[ \t]+login|podman[ \t]+login|helm[ \t]+registry[ \t]+login|sshpass)\b[^\n]*?\s-p[ \t]+)"
            r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\-\"'][^\s\"']*)"
        ),
        lambda m: f"{m.group(1)}{MASK}" if m.group(1) is not None else f"{m.group(3)}{MASK}",
    ),
    _Pattern(
        "command_password_2",
        linear.compile(
            r"(\bredis-cli\b[^\n]*?\s-a[ \t]+|\bcurl\b[^\n]*?\s(?:-[A-Za-z]*u|--user)[ \t]+[^\s:\"']+:"
            r"|\bhtpasswd[ \t]+-[A-Za-z]*b[A-Za-z]*(?:[ \t]+-[A-Za-z]+)*[ \t]+\S+[ \t]+\S+[ \t]+"
            r"|\brabbitmqctl[ \t]+(?:change_password|add_user)[ \t]+\S+[ \t]+"
            r"|\b(?:WITH(?:[ \t]+ENCRYPTED)?[ \t]+PASSWORD|IDENTIFIED[ \t]+BY)[ \t]+)"
            r"""("[^"\n]*"|'[^'\n]*'|[^\s"'\\]+)"""
        ),
        _keep(2),
    ),
    # Config files with "directive value": redis requirepass/masterauth, fluentd/netrc password.
    _Pattern(
        "directive",
        linear.compile(
            r"(?im)(^[ \t]*(?:requirepass|masterauth|password|passwd|auth_pass|bindpw|rootpw|secret)[ \t]+"
            r"|\bmachine[ \t]+\S+(?:[ \t]+login[ \t]+\S+)?[ \t]+password[ \t]+)([^\s#=:][^\s#]*)"
        ),
        _keep(2),
    ),
    # pgbouncer userlist.txt: "user" "password-or-md5".
    _Pattern("userlist", linear.compile(r"""(?m)(^[ \t]*"[^"\n]+"[ \t]+)("[^"\n]+")[ \t]*$"""), _keep(2)),
    # YAML printed as text: "- name: DB_PASSWORD" with "value: x" on the next line; <password>x</...>.
    _Pattern(
        "name_value_lines",
        linear.compile(
            r"""(name:[ \t]*["']?([A-Za-z0-9_.\-]+)["']?[ \t]*\r?\n[ \t]*value:[ \t]*)""" + _VALUE
        ),
        _named_value(2, 3),
    ),
    _Pattern(
        "xml_element",
        linear.compile(r"(<([A-Za-z0-9_.:\-]*" + _SECRETISH + r"[A-Za-z0-9_.:\-]*)>)([^<\n]+)(</)"),
        _named_value(2, 3),
    ),
    # A bare AWS secret access key (40 characters of base64), or any longer random base64 run:
    # mixed case and a digit, and not a path (API paths in logs have many slashes).
    _Pattern("random_base64", linear.compile(r"([A-Za-z0-9/+]{40,}={0,2})"), _random_run),
    # password=..., "token": "...", api_key: ..., -Dpassword=..., password => ..., PGPASSWORD=x:
    # the key decides (secret_looking_name), so password_policy: strict stays readable.
    _Pattern(
        "assignment",
        linear.compile(
            r"(?i)("
            + _KEY_CHARS
            + r"*"
            + _SECRETISH
            + _KEY_CHARS
            + r"*)"
            + _SEPARATOR
            + _VALUE
            + r"( bytes\b)?"
        ),
        lambda m: None if m.group(4) else _named_value(1, 3)(m),
    ),
    # --password x, --db-password "x y", -token abc, "--password (10 bytes) 9: x" (helmfile's dump).
    _Pattern(
        "flag_value",
        linear.compile(
            r"(?i)((?:^|[\s\"'=])--?" + _KEY_CHARS + r"*" + _SECRETISH + _KEY_CHARS + r"*)"
            r"([ \t]+(?:\(\d+ bytes\)[ \t]+\d+:[ \t]+)?)" + _VALUE
        ),
        _named_value(1, 3),
    ),
)

# A Secret printed as text (kubectl get secret -o yaml in a log): every base64 value under it.
_SECRET_DUMP = linear.compile(r"(?m)^([ \t]+[A-Za-z0-9_.\-]+:[ \t]+)([A-Za-z0-9+/]{8,}={0,2})[ \t]*$")


HEAD_CHARS = MAX_LINE_CHARS * 3 // 4  # an overlong line keeps its start and its end (where errors are)


def _cut_long_lines(text: str) -> tuple[str, int]:
    """Cut the middle out of every line longer than MAX_LINE_CHARS, saying where; nothing of the
    middle is shown, so a secret hidden 20 KB into a line never reaches a pattern or the model."""
    if len(text) <= MAX_LINE_CHARS:
        return text, 0
    lines = text.split("\n")
    cut = 0
    for i, line in enumerate(lines):
        if len(line) > MAX_LINE_CHARS:
            cut += 1
            tail = MAX_LINE_CHARS - HEAD_CHARS
            lines[i] = (
                f"{line[:HEAD_CHARS]} [... {len(line) - MAX_LINE_CHARS} characters of this line not shown ...] "
                f"{line[-tail:]}"
            )
    return "\n".join(lines), cut


def _apply(pattern: _Pattern, text: str) -> tuple[str, int]:
    count = 0

    def replace(m: Match) -> str:
        nonlocal count
        out = pattern.mask(m)
        if out is None:
            return m.group(0) or ""
        count += 1
        return out

    return pattern.regex.sub(replace, text), count


def _redact_private(text: str) -> tuple[str, int]:
    count = 0
    for pattern in PATTERNS:
        text, n = _apply(pattern, text)
        count += n
    if "kind: Secret" in text:
        text, n = _apply(_Pattern("secret_dump", _SECRET_DUMP, _mixed(2, digits=False)), text)
        count += n
    return text, count


def redact_text(text: str) -> tuple[str, int]:
    """Mask secret-looking substrings; return the text and how many were masked.

    Long lines are cut first, so every pattern sees at most MAX_LINE_CHARS per line; public blocks
    (certificates, public keys) are kept as they are; each pattern is linear in its input, so the
    whole call is linear in ``len(text)``.
    """
    text, count = _cut_long_lines(text)
    out: list[str] = []
    last = 0
    for public in PUBLIC.finditer(text):
        chunk, n = _redact_private(text[last : public.start()])
        out.append(chunk)
        out.append(public.group(0) or "")
        count += n
        last = public.end()
    chunk, n = _redact_private(text[last:])
    out.append(chunk)
    return "".join(out), count + n


# ---- objects ----------------------------------------------------------------------------------

_FLAG = linear.compile(r"^--?[A-Za-z][A-Za-z0-9_.\-]*$")
# Mappings whose values are kept whatever their keys: label values select, they do not authenticate.
_LABEL_MAPS = frozenset({"labels", "matchLabels", "nodeSelector", "selector"})


class Redactor:
    """Redacts Kubernetes objects and text, counting what it removed."""

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

    def _masked(self) -> str:
        self.count += 1
        return MASK

    def _walk(self, value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, Mapping):
            return self._mapping(value, path)
        if isinstance(value, list):
            return self._list(value, path)
        if isinstance(value, str):
            return self._string(value)
        return value

    def _mapping(self, value: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        labels = bool(path) and path[-1] in _LABEL_MAPS
        # {name: DB_PASSWORD, value: x}: env entries, Helm parameters, plugin env, anywhere.
        pair_name = value.get("name", value.get("key", value.get("type")))
        secret_pair = isinstance(pair_name, str) and secret_looking_name(pair_name)
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "managedFields":
                continue
            if key == LAST_APPLIED and path[-1:] == ("annotations",):
                out[key] = self._masked()  # a copy of the spec, often with values since moved to Secrets
                continue
            if self._secret_scalar(item) and (
                (secret_pair and key == "value") or (not labels and secret_looking_name(str(key)))
            ):
                out[key] = self._secret_value(item)
                continue
            out[key] = self._walk(item, (*path, str(key)))
        return out

    def _secret_value(self, item: Any) -> str:
        """A connection string or URL is redacted part by part (host and database stay); anything
        else, or a structure in which no part looked secret, is masked whole."""
        inner = _redact_parts(item) if isinstance(item, str) else None
        if inner is None:
            return self._masked()
        self.count += 1
        return inner

    @staticmethod
    def _secret_scalar(item: Any) -> bool:
        if isinstance(item, bool) or item is None:
            return False
        if isinstance(item, str):
            return not _placeholder(item)
        return isinstance(item, int | float)

    def _list(self, value: list[Any], path: tuple[str, ...]) -> list[Any]:
        out = [self._walk(item, path) for item in value]
        # argv: ["--password", "x"] masks "x"; ["mysql", "-ps3cret"] masks the glued password.
        mysql = any(isinstance(v, str) and "mysql" in v for v in value)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                continue
            if _FLAG.search(item) and secret_looking_name(item) and i + 1 < len(value):
                following = value[i + 1]
                if (
                    isinstance(following, str)
                    and not following.startswith("-")
                    and not _placeholder(following)
                ):
                    out[i + 1] = self._masked()
            elif mysql and item.startswith("-p") and len(item) > 2 and not item.startswith("--"):
                out[i] = f"-p{self._masked()}"
        return out

    def _string(self, value: str) -> str:
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and len(stripped) <= MAX_JSON_CHARS:
            try:
                parsed = json.loads(stripped)
                if isinstance(parsed, dict | list):
                    # An embedded JSON document (config file, dockerconfigjson, SA key): by structure.
                    before = self.count
                    try:
                        return json.dumps(self._walk(parsed, ()), ensure_ascii=False)
                    except RecursionError:
                        self.count = before  # absurdly deep: treat it as text below
            except (ValueError, RecursionError):
                pass
        return self.text(value)
