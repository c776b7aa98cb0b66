"""TensorSeal for Python: open and seal ``.tseal`` encrypted model weights.

This module only re-exports. Submodules: :mod:`tensorseal.safetensors` (NumPy, safetensors
names), :mod:`tensorseal.torch` (PyTorch, extra ``tensorseal[torch]``), :mod:`tensorseal.format`
(the container), :mod:`tensorseal.keys` (key types and the keystore), :mod:`tensorseal.hf`
(sealed Hugging Face model directories, ``tensorseal seal-dir``, loaded in memory).
"""

from .errors import (
    CommitmentError,
    ContextError,
    DecryptError,
    ERROR_CODES,
    HeaderMacError,
    InvalidKeyError,
    KeyStateError,
    KeystoreError,
    MalformedError,
    ProviderError,
    SignatureError,
    NoIdentityError,
    NotEncryptedError,
    NotTsealError,
    StorageError,
    TensorSealError,
    TrailingError,
    TruncatedError,
    UnsupportedError,
    UsageError,
)
from .format.descriptor import Descriptor
from .format.stanza import Identity, Recipient, Stanza
from .keys.kek import KekIdentity, KekRecipient
from .keys.passphrase import PassphraseIdentity, PassphraseRecipient
from .keys.recipients import parse_recipient
from .keys.x25519 import (
    X25519Identity,
    X25519Recipient,
    generate_identity,
    parse_identity_file,
    read_identity_file,
)
from .keys.xwing import XWingIdentity, XWingRecipient
from .reader import SealedFile, open_bytes, open_file, read_header
from .sealed_outputs import sealed_outputs
from .writer import Sealer, seal_bytes, seal_file, seal_to_file

__version__ = "0.1.0"

__all__ = [
    "CommitmentError",
    "ContextError",
    "DecryptError",
    "Descriptor",
    "ERROR_CODES",
    "HeaderMacError",
    "Identity",
    "InvalidKeyError",
    "KekIdentity",
    "KekRecipient",
    "KeyInfo",
    "Keystore",
    "KeyStateError",
    "KeystoreError",
    "KeystoreRecipient",
    "ProviderError",
    "SignatureError",
    "MalformedError",
    "NoIdentityError",
    "NotEncryptedError",
    "NotTsealError",
    "PassphraseIdentity",
    "PassphraseRecipient",
    "Recipient",
    "SealedFile",
    "sealed_outputs",
    "Sealer",
    "ServiceClient",
    "ServiceIdentity",
    "ServiceRecipient",
    "Stanza",
    "StorageError",
    "TensorSealError",
    "TrailingError",
    "TruncatedError",
    "UnsupportedError",
    "UsageError",
    "X25519Identity",
    "X25519Recipient",
    "XWingIdentity",
    "XWingRecipient",
    "__version__",
    "generate_identity",
    "open_bytes",
    "open_file",
    "parse_identity_file",
    "parse_recipient",
    "read_header",
    "read_identity_file",
    "seal_bytes",
    "seal_file",
    "seal_to_file",
]


# Loaded on first use (PEP 562): the keystore and the key service client with their imports
# (ssl, urllib, email...) are a large part of this package's import time, which every model
# load pays, and a load with an identity file or a KEK never needs them.
_LAZY = {
    "Keystore": "keys.keystore",
    "KeyInfo": "keys.keystore",
    "KeystoreRecipient": "keys.keystore",
    "ServiceClient": "keys.service",
    "ServiceIdentity": "keys.service",
    "ServiceRecipient": "keys.service",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
