"""TensorSeal for Python: open and seal ``.tseal`` encrypted model weights.

This module only re-exports. Submodules: :mod:`tensorseal.safetensors` (NumPy, safetensors
names), :mod:`tensorseal.torch` (PyTorch, extra ``tensorseal[torch]``), :mod:`tensorseal.format`
(the container), :mod:`tensorseal.keys` (key types and the keystore).
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
    NoIdentityError,
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
from .keys.keystore import Keystore, KeyInfo, KeystoreRecipient
from .keys.passphrase import PassphraseIdentity, PassphraseRecipient
from .keys.recipients import parse_recipient
from .keys.service import ServiceClient, ServiceIdentity, ServiceRecipient
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
    "MalformedError",
    "NoIdentityError",
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
