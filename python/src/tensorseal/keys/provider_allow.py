"""Which provider keys may be used to unwrap: the rules of ``src/keys/provider-allow.ts``
(docs/PROVIDERS.md, "Allowed keys").

A ``kms`` stanza names its provider key, and a sealed file can come from anyone. Without a list,
opening a stranger's file would make this package call whatever KMS key the file names with
the user's credentials (a Decrypt in someone else's CloudTrail, a confused deputy, an oracle)
or log in to whatever token it names. So a provider identity contacts its provider only for
keys the caller allowed; any other stanza is refused (``E_KEY_STATE``) before anything is
loaded or contacted, and the refusal is reported only when no stanza of the file opens.

- aws-kms: key ARNs; key ARN patterns (``*`` within the region or the key id, never in the
  partition or account); aliases (``alias/NAME`` or an alias ARN) and key ids, which allow the
  key they name now (resolved with DescribeKey, once per policy).
- pkcs11: ``TOKEN`` (every key of that token) or ``TOKEN/KEYLABEL`` (that key).
"""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import TensorSealError, error, fail

# re.ASCII: \d and friends must not match other scripts' digits, as in the TS regexes.
_KEY_ARN = re.compile(r"arn:[a-z0-9-]+:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+", re.ASCII)
_KEY_ARN_PATTERN = re.compile(r"arn:([a-z0-9-]+):kms:([a-z0-9*-]+):([0-9]{12}):key/([A-Za-z0-9*-]+)", re.ASCII)
_ALIAS = re.compile(r"(arn:[a-z0-9-]+:kms:[a-z0-9-]+:[0-9]{12}:)?alias/[A-Za-z0-9/_-]+", re.ASCII)
_KEY_ID = re.compile(r"[A-Za-z0-9-]+", re.ASCII)

KeyArnResolver = Callable[[str], str]
"""The key ARN an alias or key id names now (DescribeKey); asked only about allowed entries."""


@dataclass(frozen=True)
class ProviderAllowList:
    """The provider keys a caller allows.

    Args:
        aws_kms: key ARNs, key ARN patterns, aliases, alias ARNs and key ids.
        pkcs11: token labels, or ``TOKEN/KEYLABEL`` for one key.

    Example:
        >>> ProviderAllowList(pkcs11=["prod-hsm"]).pkcs11
        ('prod-hsm',)
    """

    aws_kms: Sequence[str] = field(default=())
    pkcs11: Sequence[str] = field(default=())

    def __post_init__(self) -> None:
        for name in ("aws_kms", "pkcs11"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence):
                fail("E_USAGE", f"ProviderAllowList.{name} must be a list of strings")
            object.__setattr__(self, name, tuple(value))


def _aws_kms_entry_problem(e: str) -> str | None:
    if _KEY_ARN_PATTERN.fullmatch(e) or _ALIAS.fullmatch(e) or _KEY_ID.fullmatch(e):
        return None
    if "*" in e:
        return ("a wildcard may stand only in the region or the key id of a key ARN, never in the account "
                "(arn:aws:kms:*:ACCOUNT:key/*)")  # fmt: skip
    return "expected a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), alias/NAME, an alias ARN or a key id"


def _pkcs11_entry_problem(e: str) -> str | None:
    slash = e.find("/")
    token = e if slash < 0 else e[:slash]
    if not token or slash == len(e) - 1:
        return "expected TOKEN or TOKEN/KEYLABEL"
    if len(token.encode()) > 32:
        return "a token label has at most 32 bytes"
    return None


def allow_entry_problem(provider: str, entry: str) -> str | None:
    """Why ``entry`` is not a valid entry for ``provider`` (``aws-kms`` or ``pkcs11``); None if it is."""
    return _aws_kms_entry_problem(entry) if provider == "aws-kms" else _pkcs11_entry_problem(entry)


def provider_allow_list_from_env(env: Mapping[str, str] | None = None) -> ProviderAllowList:
    """``TENSORSEAL_KMS_KEYS`` and ``TENSORSEAL_PKCS11_TOKENS`` (comma-separated), as the CLI reads them.

    Example:
        >>> provider_allow_list_from_env({"TENSORSEAL_PKCS11_TOKENS": "hsm1, hsm2/models"}).pkcs11
        ('hsm1', 'hsm2/models')
    """
    env = os.environ if env is None else env

    def split(name: str) -> list[str]:
        return [x.strip() for x in env.get(name, "").split(",") if x.strip()]

    lists = {"aws-kms": ("TENSORSEAL_KMS_KEYS", split("TENSORSEAL_KMS_KEYS")),
             "pkcs11": ("TENSORSEAL_PKCS11_TOKENS", split("TENSORSEAL_PKCS11_TOKENS"))}  # fmt: skip
    for provider, (name, entries) in lists.items():
        for e in entries:
            why = allow_entry_problem(provider, e)
            if why:
                fail("E_USAGE", f"{name}: entry {shown(e)}: {why}")
    return ProviderAllowList(aws_kms=lists["aws-kms"][1], pkcs11=lists["pkcs11"][1])


def shown(ref: str) -> str:
    """An untrusted key reference as it may appear in a message: no control characters, bounded."""
    clean = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf") else c for c in ref)
    return clean[:200] + "..." if len(clean) > 200 else clean


def _as_allow_list(allow: ProviderAllowList | Mapping[str, Sequence[str]]) -> ProviderAllowList:
    if isinstance(allow, ProviderAllowList):
        return allow
    if isinstance(allow, Mapping):
        unknown = set(allow) - {"aws_kms", "pkcs11"}
        if unknown:
            fail("E_USAGE", f"unknown provider allow-list keys {sorted(unknown)}: expected aws_kms, pkcs11")
        return ProviderAllowList(aws_kms=allow.get("aws_kms", ()), pkcs11=allow.get("pkcs11", ()))
    fail("E_USAGE", "provider identities need the allowed keys: ProviderAllowList(aws_kms=[...], pkcs11=[...])")


class ProviderKeyPolicy:
    """A compiled, validated list: answers whether a stanza's key reference may be used.

    Example:
        >>> ProviderKeyPolicy(ProviderAllowList(pkcs11=["hsm"])).check_pkcs11("hsm/models")
    """

    def __init__(self, allow: ProviderAllowList | Mapping[str, Sequence[str]]) -> None:
        lst = _as_allow_list(allow)
        self._aws_patterns: list[re.Pattern[str]] = []
        self._aws_to_resolve: list[str] = []
        for e in lst.aws_kms:
            why = _aws_kms_entry_problem(e)
            if why:
                fail("E_USAGE", f"allowed aws-kms key {shown(e)}: {why}")
            m = _KEY_ARN_PATTERN.fullmatch(e)
            if m and "*" in e:
                self._aws_patterns.append(_arn_pattern(m))
            elif not m:
                self._aws_to_resolve.append(e)
        for e in lst.pkcs11:
            why = _pkcs11_entry_problem(e)
            if why:
                fail("E_USAGE", f"allowed pkcs11 token {shown(e)}: {why}")
        self._aws_exact = set(lst.aws_kms)
        self._pkcs11 = set(lst.pkcs11)
        # Aliases and key ids resolved once (the answer or the failure), as the TS side caches
        # its promise: KMS is asked about an entry at most once per policy.
        self._resolved: dict[str, str | TensorSealError] = {}
        self._lock = threading.Lock()

    def check_pkcs11(self, key_ref: str) -> None:
        """Raises the refusal (``E_KEY_STATE``) unless the list allows this key; touches no token."""
        slash = key_ref.find("/")
        token = key_ref if slash < 0 else key_ref[:slash]
        if token in self._pkcs11 or key_ref in self._pkcs11:
            return
        fail(
            "E_KEY_STATE",
            f"pkcs11 key {shown(key_ref)} is not allowed, so no session was opened on token {shown(token)}: "
            f"if you trust this file's source with that token, allow it with "
            f"ProviderAllowList(pkcs11=[{shown(token)!r}]), TENSORSEAL_PKCS11_TOKENS or `-i pkcs11:{shown(token)}` "
            "in the CLI (docs/PROVIDERS.md)",
        )

    def check_aws_kms(self, key_ref: str, resolve: KeyArnResolver) -> None:
        """Raises the refusal unless the list allows this AWS KMS key. KMS is contacted only to
        resolve the list's own aliases and key ids, never about the stanza's key."""
        if key_ref in self._aws_exact:
            return
        is_arn = _KEY_ARN.fullmatch(key_ref) is not None
        if is_arn and any(p.fullmatch(key_ref) for p in self._aws_patterns):
            return
        unresolved: list[str] = []
        if is_arn:
            for entry in self._aws_to_resolve:
                got = self._resolve(entry, resolve)
                if isinstance(got, TensorSealError):
                    unresolved.append(f"{shown(entry)} ({got.message})")
                elif got == key_ref:
                    return
        note = f"; allowed keys that could not be resolved: {', '.join(unresolved)}" if unresolved else ""
        fail(
            "E_KEY_STATE",
            f"aws-kms key {shown(key_ref)} is not allowed, so KMS was not asked to use it: if you trust this "
            f"file's source with that key, allow it with ProviderAllowList(aws_kms=[{shown(key_ref)!r}]), "
            f"TENSORSEAL_KMS_KEYS or `-i aws-kms:{shown(key_ref)}` in the CLI (docs/PROVIDERS.md){note}",
        )

    def _resolve(self, entry: str, resolve: KeyArnResolver) -> str | TensorSealError:
        with self._lock:
            if entry not in self._resolved:
                try:
                    self._resolved[entry] = resolve(entry)
                except TensorSealError as e:
                    self._resolved[entry] = e
                except Exception as e:  # a resolver outside this package: never let it leak through
                    self._resolved[entry] = error("E_PROVIDER", f"DescribeKey failed ({type(e).__name__})")
            return self._resolved[entry]


def _arn_pattern(m: re.Match[str]) -> re.Pattern[str]:
    """``*`` matches within one ARN field: any run of the characters that field may hold."""
    partition, region, account, key_id = m.groups()

    def glob(s: str) -> str:
        return "[A-Za-z0-9-]*".join(re.escape(p) for p in s.split("*"))

    return re.compile(rf"arn:{re.escape(partition)}:kms:{glob(region)}:{account}:key/{glob(key_id)}", re.ASCII)
