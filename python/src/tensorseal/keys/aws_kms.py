"""The AWS KMS provider (boto3, extra ``tensorseal[kms]``), byte-compatible with
``src/keys/kms/provider.ts``: KMS Encrypt wraps the file key under a KMS key, Decrypt unwraps
it. Every call carries an encryption context that binds the ciphertext to its stanza:

    kms stanza fields = ["aws-kms", key ARN, binding (16), KMS ciphertext blob (1..4096)]
    EncryptionContext = {"tensorseal:stanza": "v1", "tensorseal:binding": hex(binding)}

The binding is 16 random bytes drawn per stanza; it appears in CloudTrail and in
``tensorseal inspect``, so each Decrypt can be traced to its file. When a KMS recipient comes
first among a file's recipients, GenerateDataKey draws the file key inside KMS and the others
wrap that key (writer.Sealer); a later KMS recipient wraps the existing key with Encrypt.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import TensorSealError, error, fail
from ..format.filekey import FILE_KEY_SIZE
from ..format.stanza import Stanza
from .provider import AWS_KMS_PROVIDER, KmsStanza, encode_kms_stanza, kms_provider_of, parse_kms_stanza, provider_fail

KMS_BINDING_SIZE = 16
_MAX_BLOB = 4096
CONTEXT_STANZA_KEY = "tensorseal:stanza"
CONTEXT_BINDING_KEY = "tensorseal:binding"
_ARN_REGION = re.compile(r"arn:[^:]+:kms:([^:]+):")


def kms_encryption_context(binding: bytes) -> dict[str, str]:
    """The encryption context of one stanza; the same map must be given to Decrypt.

    Example:
        >>> kms_encryption_context(bytes(16))["tensorseal:binding"]
        '00000000000000000000000000000000'
    """
    return {CONTEXT_STANZA_KEY: "v1", CONTEXT_BINDING_KEY: bytes(binding).hex()}


def region_of_key_ref(ref: str) -> str | None:
    """``arn:aws:kms:REGION:ACCOUNT:key/ID`` (or ``:alias/NAME``) -> REGION; None for ids and aliases.

    Example:
        >>> region_of_key_ref("arn:aws:kms:eu-west-1:111122223333:key/abc"), region_of_key_ref("alias/x")
        ('eu-west-1', None)
    """
    m = _ARN_REGION.match(ref)
    return m.group(1) if m else None


def _parse_aws_stanza(s: Stanza) -> tuple[KmsStanza, bytes]:
    k = parse_kms_stanza(s)
    if len(k.params) != 1 or len(k.params[0]) != KMS_BINDING_SIZE:
        fail("E_MALFORMED", "aws-kms kms stanza must have fields [provider, key, binding(16), ciphertext]")
    if not 0 < len(k.wrapped) <= _MAX_BLOB:
        fail("E_MALFORMED", "aws-kms kms stanza ciphertext must be 1..4096 bytes")
    return k, k.params[0]


class AwsKmsProvider:
    """AWS KMS through boto3: credentials from boto3's chain (environment, profile, role).

    Args:
        region: region for key ids and aliases; an ARN's own region always wins.
        endpoint_url: a KMS-compatible endpoint (tests: a loopback moto server).
        max_attempts: boto3 attempts per call (default 3, as the CLI).
        client_factory: region -> boto3 KMS client, instead of making one (tests, custom sessions).
    """

    name = AWS_KMS_PROVIDER

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        max_attempts: int = 3,
        client_factory: Callable[[str], Any] | None = None,
    ) -> None:
        self.region, self.endpoint_url, self.max_attempts = region, endpoint_url, max_attempts
        self._factory = client_factory
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def wrap(self, file_key: bytes, key_ref: str) -> Stanza:
        if len(file_key) != FILE_KEY_SIZE:
            fail("E_KEY", "file key must be 32 bytes")
        binding = secrets.token_bytes(KMS_BINDING_SIZE)
        out = self._call(key_ref, "Encrypt", lambda c: c.encrypt(
            KeyId=key_ref, Plaintext=bytes(file_key), EncryptionContext=kms_encryption_context(binding)))  # fmt: skip
        return self._stanza(out.get("KeyId") or key_ref, binding, out.get("CiphertextBlob"))

    def generate_data_key(self, key_ref: str) -> tuple[bytes, Stanza]:
        """A file key drawn inside KMS (GenerateDataKey, 32 bytes) and its stanza."""
        binding = secrets.token_bytes(KMS_BINDING_SIZE)
        out = self._call(key_ref, "GenerateDataKey", lambda c: c.generate_data_key(
            KeyId=key_ref, NumberOfBytes=FILE_KEY_SIZE, EncryptionContext=kms_encryption_context(binding)))  # fmt: skip
        pt = out.get("Plaintext")
        if not isinstance(pt, bytes) or len(pt) != FILE_KEY_SIZE:
            provider_fail(self.name, f"GenerateDataKey on {key_ref} returned no 32-byte key")
        return pt, self._stanza(out.get("KeyId") or key_ref, binding, out.get("CiphertextBlob"))

    def unwrap(self, stanza: Stanza) -> bytes | None:
        if kms_provider_of(stanza) != self.name:
            return None
        k, binding = _parse_aws_stanza(stanza)
        # Naming the key makes KMS refuse a ciphertext of any other key (IncorrectKeyException).
        out = self._call(k.key_ref, "Decrypt", lambda c: c.decrypt(
            KeyId=k.key_ref, CiphertextBlob=k.wrapped, EncryptionContext=kms_encryption_context(binding)))  # fmt: skip
        pt = out.get("Plaintext")
        if not isinstance(pt, bytes) or len(pt) != FILE_KEY_SIZE:
            fail("E_DECRYPT", f"aws-kms stanza for {k.key_ref} holds no 32-byte file key")
        return pt

    def re_encrypt(self, stanza: Stanza, destination_key_ref: str) -> Stanza:
        """Moves a stanza to another KMS key inside KMS (ReEncrypt), with a fresh binding; the
        file key never reaches this process."""
        if kms_provider_of(stanza) != self.name:
            fail("E_USAGE", "not an aws-kms stanza")
        k, old = _parse_aws_stanza(stanza)
        binding = secrets.token_bytes(KMS_BINDING_SIZE)
        out = self._call(destination_key_ref, "ReEncrypt", lambda c: c.re_encrypt(
            CiphertextBlob=k.wrapped, SourceKeyId=k.key_ref, SourceEncryptionContext=kms_encryption_context(old),
            DestinationKeyId=destination_key_ref, DestinationEncryptionContext=kms_encryption_context(binding)))  # fmt: skip
        return self._stanza(out.get("KeyId") or destination_key_ref, binding, out.get("CiphertextBlob"))

    def key_arn(self, key_ref: str) -> str:
        """The key ARN an alias, alias ARN or key id names now (DescribeKey). Used only for the
        entries of the caller's allow-list, never for a key a file names."""
        out = self._call(key_ref, "DescribeKey", lambda c: c.describe_key(KeyId=key_ref))
        arn = (out.get("KeyMetadata") or {}).get("Arn")
        if not arn:
            provider_fail(self.name, f"DescribeKey {key_ref} returned no ARN")
        return str(arn)

    def generate_key(self, description: str) -> str:
        """Creates a symmetric (ENCRYPT_DECRYPT) KMS key; returns its ARN."""
        out = self._call("", "CreateKey", lambda c: c.create_key(Description=description, KeyUsage="ENCRYPT_DECRYPT"))
        arn = (out.get("KeyMetadata") or {}).get("Arn")
        if not arn:
            provider_fail(self.name, "CreateKey returned no key ARN")
        return str(arn)

    def _stanza(self, key_arn: str, binding: bytes, blob: Any) -> Stanza:
        if not isinstance(blob, bytes) or not 0 < len(blob) <= _MAX_BLOB:
            n = len(blob) if isinstance(blob, bytes) else 0
            provider_fail(self.name, f"KMS returned a ciphertext of {n} bytes (1..4096 expected)")
        return encode_kms_stanza(KmsStanza(self.name, key_arn, (binding,), blob))

    def _client(self, key_ref: str) -> Any:
        region = region_of_key_ref(key_ref) or self.region
        if not region:
            provider_fail(self.name, f"no region for key {key_ref}: use its full ARN, or set AWS_REGION (or TENSORSEAL_KMS_REGION)")
        with self._lock:
            c = self._clients.get(region)
            if c is None:
                c = self._factory(region) if self._factory else self._new_client(region)
                self._clients[region] = c
            return c

    def _new_client(self, region: str) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            provider_fail(self.name, "boto3 is not installed: pip install 'tensorseal[kms]'")
        config = Config(retries={"max_attempts": self.max_attempts, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        return boto3.client("kms", region_name=region, endpoint_url=self.endpoint_url, config=config)

    def _call(self, key_ref: str, op: str, f: Callable[[Any], Any]) -> Any:
        c = self._client(key_ref)
        try:
            return f(c)
        except TensorSealError:
            raise
        except Exception as e:
            raise map_kms_error(e, op, key_ref or "(new key)", self.endpoint_url) from e


_NETWORK = ("EndpointConnectionError", "ConnectionClosedError", "ConnectTimeoutError", "ProxyConnectionError",
            "SSLError", "ConnectionError")  # fmt: skip


def map_kms_error(e: BaseException, op: str, key_ref: str, endpoint: str | None = None) -> TensorSealError:
    """boto3 errors -> ``E_PROVIDER`` (refused or unreachable) or ``E_DECRYPT`` (the stanza does
    not open), with the same messages as the CLI."""
    if isinstance(e, TensorSealError):
        return e
    response = getattr(e, "response", None)
    name = str(response.get("Error", {}).get("Code", "")) if isinstance(response, Mapping) else ""
    name = name or type(e).__name__
    key = f"key {key_ref}"
    at = f" at {endpoint}" if endpoint else ""

    def provider(why: str) -> TensorSealError:
        return error("E_PROVIDER", f"{AWS_KMS_PROVIDER}: {op} failed: {why} ({name})")

    if name in ("InvalidCiphertextException", "IncorrectKeyException"):
        return error("E_DECRYPT", f"{AWS_KMS_PROVIDER}: the stanza does not open under {key}: its ciphertext or "
                                  f"encryption context was modified, or it belongs to another key ({name})")  # fmt: skip
    table = {
        "NotFoundException": f"{key} not found (deleted, or another account or region)",
        "DisabledException": f"{key} is disabled: enable it (aws kms enable-key) to use it",
        "KMSInvalidStateException": f"{key} is not usable in its state (pending deletion or import): cancel the deletion, or use another key",
        "AccessDeniedException": f"access to {key} denied: the key policy or IAM must allow kms:{op}",
        "UnrecognizedClientException": "AWS credentials rejected: check AWS_ACCESS_KEY_ID / AWS_PROFILE",
        "InvalidSignatureException": "AWS credentials rejected: check AWS_ACCESS_KEY_ID / AWS_PROFILE",
        "ExpiredTokenException": "AWS credentials rejected: check AWS_ACCESS_KEY_ID / AWS_PROFILE",
        "InvalidClientTokenId": "AWS credentials rejected: check AWS_ACCESS_KEY_ID / AWS_PROFILE",
        "NoCredentialsError": "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        "PartialCredentialsError": "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        "ThrottlingException": "KMS is throttling requests: retry later",
        "LimitExceededException": "KMS is throttling requests: retry later",
        "ValidationException": f"KMS rejected the request for {key}: a symmetric ENCRYPT_DECRYPT key is required",
        "InvalidKeyUsageException": f"KMS rejected the request for {key}: a symmetric ENCRYPT_DECRYPT key is required",
        "ReadTimeoutError": f"no answer from KMS{at} in time",
    }
    if name in table:
        return provider(table[name])
    if name in _NETWORK:
        return provider(f"cannot reach KMS{at}: {name}")
    return provider(f"unexpected KMS error for {key}")


def aws_kms_provider_from_env(env: Mapping[str, str] | None = None) -> AwsKmsProvider:
    """The provider configured as the CLI's: ``TENSORSEAL_KMS_REGION`` / ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION`` and ``TENSORSEAL_KMS_ENDPOINT`` / ``AWS_ENDPOINT_URL_KMS`` /
    ``AWS_ENDPOINT_URL``."""
    env = os.environ if env is None else env
    region = env.get("TENSORSEAL_KMS_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    endpoint = env.get("TENSORSEAL_KMS_ENDPOINT") or env.get("AWS_ENDPOINT_URL_KMS") or env.get("AWS_ENDPOINT_URL")
    return AwsKmsProvider(region=region or None, endpoint_url=endpoint or None)


def re_encrypt_kms_stanza(stanza: Stanza, destination_key_ref: str, allow: Any,
                          provider: AwsKmsProvider | None = None) -> Stanza:  # fmt: skip
    """One aws-kms stanza moved to ``destination_key_ref`` without the file key. The stanza's own
    key must be on ``allow`` (ReEncrypt decrypts under it): a refused key is ``E_KEY_STATE`` and
    KMS is not called."""
    from .provider_allow import ProviderKeyPolicy

    if kms_provider_of(stanza) != AWS_KMS_PROVIDER:
        fail("E_USAGE", "not an aws-kms stanza")
    k, _ = _parse_aws_stanza(stanza)
    p = provider or aws_kms_provider_from_env()
    ProviderKeyPolicy(allow).check_aws_kms(k.key_ref, p.key_arn)
    return p.re_encrypt(stanza, destination_key_ref)
