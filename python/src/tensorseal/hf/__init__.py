"""Sealed Hugging Face model directories (``tensorseal seal-dir``) loaded in process.

- :func:`open_model_dir`: the manifest checked as ``tensorseal open-dir`` checks it (every file
  present, none added, each bound to its path and to this model, sizes and SHA-256 digests);
  config and tokenizer files as bytes in memory, shards as tensors.
- :func:`load_state_dict`: every shard (``model.safetensors.index.json`` respected) as one torch
  state dict (needs ``tensorseal[torch]``).
- :func:`from_pretrained`: a transformers model built from it (needs ``transformers`` >= 5).

- :func:`verify_sealed_dir`: a signed model (``seal-dir --sign``) checked against its producer's
  public key without decrypting (local or remote); ``require_signer=`` on the loaders does it first.

Nothing here writes plaintext to disk. See python/README.md, "Sealed model directories".
"""

from .manifest import MANIFEST_NAME, Manifest, ManifestEntry, parse_manifest
from .model_dir import ModelDir, is_sealed_model_dir, open_model_dir, read_manifest
from .pretrained import from_pretrained
from .provenance import verify_sealed_dir
from .state_dict import load_state_dict

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "ManifestEntry",
    "ModelDir",
    "from_pretrained",
    "is_sealed_model_dir",
    "load_state_dict",
    "open_model_dir",
    "parse_manifest",
    "read_manifest",
    "verify_sealed_dir",
]
