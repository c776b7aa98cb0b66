"""Roots of trust outside this process (PKCS#11 HSMs, AWS KMS) behind one narrow interface, and
the ``kms`` stanza they all write (spec/FORMAT.md §3.5), byte for byte as ``src/keys/provider.ts``:

    fields = [provider (ASCII), key reference (UTF-8), provider-specific fields..., wrapped]

The stanza names the provider and the key; which keys may be used at all is the caller's list
(:mod:`tensorseal.keys.provider_allow`), never the file's. Providers load lazily: boto3 and
python-pkcs11 are optional extras (``tensorseal[kms]``, ``tensorseal[pkcs11]``) that users who
never touch a KMS or an HSM do not need.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol

from ..errors import fail
from ..format.stanza import Identity, Recipient, Stanza
from .provider_allow import ProviderAllowList, ProviderKeyPolicy, provider_allow_list_from_env

KMS_STANZA = "kms"
PKCS11_PROVIDER = "pkcs11"
AWS_KMS_PROVIDER = "aws-kms"
PROVIDER_NAMES = (PKCS11_PROVIDER, AWS_KMS_PROVIDER)
MAX_KEY_REF = 2048
_PROVIDER_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}", re.ASCII)


class KeyProvider(Protocol):
    """One root of trust. ``unwrap`` returns None for another provider's stanza, raises on failure."""

    name: str

    def wrap(self, file_key: bytes, key_ref: str) -> Stanza: ...

    def unwrap(self, stanza: Stanza) -> bytes | None: ...


@dataclass(frozen=True)
class KmsStanza:
    """The common part of every ``kms`` stanza."""

    provider: str
    key_ref: str
    params: tuple[bytes, ...]
    wrapped: bytes


def encode_kms_stanza(k: KmsStanza) -> Stanza:
    """The stanza of ``k`` (``E_USAGE`` for a bad provider name or key reference)."""
    if not _PROVIDER_PATTERN.fullmatch(k.provider):
        fail("E_USAGE", f"bad provider name {k.provider!r}")
    _check_key_ref(k.key_ref)
    return Stanza(KMS_STANZA, (k.provider.encode("ascii"), k.key_ref.encode(), *k.params, k.wrapped))


def parse_kms_stanza(s: Stanza) -> KmsStanza:
    """Provider and key reference, strictly checked (``E_MALFORMED``)."""
    if s.type != KMS_STANZA:
        fail("E_MALFORMED", f"not a kms stanza: {s.type}")
    if len(s.fields) < 3:
        fail("E_MALFORMED", f"kms stanza has {len(s.fields)} fields, at least 3 expected")
    provider = s.fields[0].decode("latin-1")
    if not _PROVIDER_PATTERN.fullmatch(provider):
        fail("E_MALFORMED", "kms stanza provider is not [a-z0-9-]")
    ref = s.fields[1]
    try:
        key_ref = ref.decode("utf-8")
    except UnicodeDecodeError:
        fail("E_MALFORMED", "kms stanza key reference is not valid UTF-8")
    if not 0 < len(ref) <= MAX_KEY_REF:
        fail("E_MALFORMED", f"kms stanza key reference must be 1..{MAX_KEY_REF} bytes")
    return KmsStanza(provider, key_ref, tuple(s.fields[2:-1]), s.fields[-1])


def kms_provider_of(s: Stanza) -> str | None:
    """The provider a stanza names, or None when it is not a kms stanza."""
    return s.fields[0].decode("latin-1") if s.type == KMS_STANZA and s.fields else None


def describe_kms_stanza(s: Stanza) -> str:
    """One public line, as ``tensorseal inspect`` prints it: provider, key and (aws-kms) binding."""
    k = parse_kms_stanza(s)
    binding = f" binding {k.params[0].hex()}" if k.provider == AWS_KMS_PROVIDER and k.params else ""
    return f"kms {k.provider} {k.key_ref}{binding}"


def _check_key_ref(ref: str) -> None:
    if not 0 < len(ref.encode()) <= MAX_KEY_REF:
        fail("E_USAGE", f"key reference must be 1..{MAX_KEY_REF} bytes")


def provider_fail(provider: str, why: str) -> NoReturn:
    """An ``E_PROVIDER`` failure naming the provider and the reason, never a secret."""
    fail("E_PROVIDER", f"{provider}: {why}")


# Providers configured from the environment, one per process and name, made on first use.
_providers: dict[str, KeyProvider] = {}
_providers_lock = threading.Lock()


def load_provider(name: str) -> KeyProvider:
    """The provider for ``name`` configured from the environment (docs/PROVIDERS.md), made once."""
    with _providers_lock:
        p = _providers.get(name)
        if p is None:
            if name == AWS_KMS_PROVIDER:
                from .aws_kms import aws_kms_provider_from_env

                p = aws_kms_provider_from_env()
            elif name == PKCS11_PROVIDER:
                from .pkcs11 import pkcs11_provider_from_env

                p = pkcs11_provider_from_env()
            else:
                fail("E_USAGE", f"unknown key provider {name}")
            _providers[name] = p
        return p


def reset_providers() -> None:
    """Forgets the providers made from the environment (after the environment changed; tests)."""
    with _providers_lock:
        _providers.clear()


ProviderSource = Callable[[], KeyProvider]


def _source(name: str, providers: Mapping[str, KeyProvider] | None) -> ProviderSource:
    given = (providers or {}).get(name)
    return (lambda: given) if given is not None else (lambda: load_provider(name))


class ProviderRecipient:
    """Wraps file keys with a provider key: ``pkcs11:TOKEN/KEYLABEL`` or ``aws-kms:KEY``.

    When it is the first recipient of a seal that can draw a key (``generate``), an AWS KMS key
    draws the file key itself with GenerateDataKey, as the CLI does.
    """

    def __init__(self, provider: ProviderSource, name: str, key_ref: str,
                 matches: Callable[[KmsStanza], bool] | None = None) -> None:  # fmt: skip
        _check_key_ref(key_ref)
        self._provider, self.name, self.key_ref = provider, name, key_ref
        self._matches = matches or (lambda k: k.key_ref == key_ref)

    @property
    def id(self) -> str:
        return f"{self.name}:{self.key_ref}"

    def wrap(self, file_key: bytes) -> Stanza:
        return self._provider().wrap(file_key, self.key_ref)

    def generate(self) -> tuple[bytes, Stanza] | None:
        """A file key drawn inside the provider with its stanza, or None when it cannot draw one."""
        p = self._provider()
        draw = getattr(p, "generate_data_key", None)
        return draw(self.key_ref) if draw is not None else None

    def matches(self, stanza: Stanza) -> bool:
        """Whether ``stanza`` is one this recipient names (for removing recipients)."""
        return kms_provider_of(stanza) == self.name and self._matches(parse_kms_stanza(stanza))


def parse_provider_recipient(s: str, providers: Mapping[str, KeyProvider] | None = None) -> ProviderRecipient | None:
    """``pkcs11:TOKEN/KEYLABEL`` or ``aws-kms:ARN_OR_ALIAS_OR_ID``; None for any other string.

    Example:
        >>> parse_provider_recipient("pkcs11:prod-hsm/models").id
        'pkcs11:prod-hsm/models'
    """
    name, colon, ref = s.partition(":")
    if not colon or name not in PROVIDER_NAMES:
        return None
    if name == PKCS11_PROVIDER:
        slash = ref.find("/")
        if slash <= 0 or slash == len(ref) - 1:
            fail("E_USAGE", f"recipient {s}: expected pkcs11:TOKEN_LABEL/KEY_LABEL")
        return ProviderRecipient(_source(name, providers), name, ref)
    if not ref:
        fail("E_USAGE", f"recipient {s}: expected aws-kms:KEY_ARN, alias/NAME or a key id")
    # A stanza records the key ARN KMS reports: removal by alias matches only the stanzas this
    # recipient wrote; by ARN or key id, every stanza of that key.
    return ProviderRecipient(_source(name, providers), name, ref,
                             lambda k: k.key_ref == ref or k.key_ref.endswith(f":key/{ref}"))  # fmt: skip


class ProviderIdentity:
    """Unwraps the ``kms`` stanzas of one provider whose key ``policy`` allows.

    The stanza is parsed and checked against the policy first; only then is the provider loaded
    and contacted. A refused key is never contacted (``E_KEY_STATE``, which the unlock treats as
    "skip, report only if nothing opens").
    """

    def __init__(self, provider: ProviderSource, name: str, policy: ProviderKeyPolicy) -> None:
        self._provider, self.name, self._policy = provider, name, policy

    @property
    def id(self) -> str:
        return self.name

    def unwrap(self, stanza: Stanza) -> bytes | None:
        if kms_provider_of(stanza) != self.name:
            return None
        key_ref = parse_kms_stanza(stanza).key_ref
        if self.name == PKCS11_PROVIDER:
            self._policy.check_pkcs11(key_ref)
        else:
            self._policy.check_aws_kms(key_ref, self._key_arn)
        return self._provider().unwrap(stanza)

    def _key_arn(self, ref: str) -> str:
        p = self._provider()
        key_arn = getattr(p, "key_arn", None)
        return key_arn(ref) if key_arn is not None else ref


def provider_identities(
    allow: ProviderAllowList | Mapping[str, Sequence[str]],
    *,
    providers: Mapping[str, KeyProvider] | None = None,
) -> list[Identity]:
    """Identities for the PKCS#11 and AWS KMS providers that use only the keys ``allow`` lists.

    Each loads its provider (from the environment, unless given in ``providers``) only when it
    meets an allowed stanza of its own. The list is required: keys a file names are never
    allowed by the file itself. ``provider_allow_list_from_env()`` reads the CLI's variables.

    Args:
        allow: ``ProviderAllowList(aws_kms=[...], pkcs11=[...])`` or a dict with those keys.
        providers: providers to use instead of the environment's, by name.

    Example:
        >>> ids = provider_identities({"pkcs11": ["prod-hsm"]})
        >>> [i.id for i in ids]
        ['pkcs11', 'aws-kms']
    """
    policy = ProviderKeyPolicy(allow)
    return [ProviderIdentity(_source(n, providers), n, policy) for n in PROVIDER_NAMES]


__all__ = [
    "AWS_KMS_PROVIDER",
    "KMS_STANZA",
    "PKCS11_PROVIDER",
    "KeyProvider",
    "KmsStanza",
    "ProviderAllowList",
    "ProviderIdentity",
    "ProviderRecipient",
    "Recipient",
    "describe_kms_stanza",
    "encode_kms_stanza",
    "kms_provider_of",
    "load_provider",
    "parse_kms_stanza",
    "parse_provider_recipient",
    "provider_allow_list_from_env",
    "provider_identities",
    "reset_providers",
]
