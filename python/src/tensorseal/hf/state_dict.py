"""All the weights of a sealed Hugging Face model directory as one torch state dict, in memory.

The shards are those ``model.safetensors.index.json`` names (its ``weight_map``), or the single
``model.safetensors``; every shard is checked against the manifest (see :mod:`.model_dir`), and
the index must describe the shards exactly (``E_MALFORMED`` otherwise): each tensor in the
shard the index names, no tensor in two shards, none the index leaves out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..errors import error, fail
from ..format.stanza import Identity
from .model_dir import ModelDir, open_model_dir
from .provenance import SignerKey

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"


def shard_map(md: ModelDir) -> dict[str, list[str]] | None:
    """Shard file -> the tensor names the index puts there, or None without an index."""
    if SAFE_WEIGHTS_INDEX_NAME not in md:
        return None
    index = md.read_json(SAFE_WEIGHTS_INDEX_NAME)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    where = md.sealed_path(SAFE_WEIGHTS_INDEX_NAME)
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise error("E_MALFORMED", "weight_map is not a map of tensor names to shard files").naming(where)
    shards: dict[str, list[str]] = {}
    for name, shard in weight_map.items():
        if shard not in md:
            raise error("E_MALFORMED", f"weight_map names {shard!r}, which is not in the sealed model").naming(where)
        shards.setdefault(shard, []).append(name)
    return shards


def weight_files(md: ModelDir) -> dict[str, list[str] | None]:
    """The safetensors files to load, each with the tensors it must hold exactly (None: any)."""
    shards = shard_map(md)
    if shards is not None:
        return {s: shards[s] for s in sorted(shards)}
    if SAFE_WEIGHTS_NAME in md:
        return {SAFE_WEIGHTS_NAME: None}
    if any(p.endswith(".bin") for p in md.names()):
        fail("E_UNSUPPORTED", f"{md.path}: only safetensors weights are loaded (pickled .bin files are not)")
    fail("E_USAGE", f"{md.path} has neither {SAFE_WEIGHTS_NAME} nor {SAFE_WEIGHTS_INDEX_NAME}")


def load_model_state_dict(md: ModelDir, *, device: Any = "cpu", dtype: Any = None) -> dict[str, Any]:
    """All tensors of ``md``'s shards, checked against the manifest and the index."""
    state: dict[str, Any] = {}
    for shard, expected in weight_files(md).items():
        tensors = md.load_file(shard, framework="pt", device="cpu")
        if expected is not None and set(tensors) != set(expected):
            odd = sorted(set(tensors) ^ set(expected))[:3]
            disagree = error("E_MALFORMED", f"shard and {SAFE_WEIGHTS_INDEX_NAME} disagree about {odd}")
            raise disagree.naming(md.sealed_path(shard))
        for name, t in tensors.items():
            if name in state:
                raise error("E_MALFORMED", f"tensor {name!r} is in two shards").naming(md.sealed_path(shard))
            state[name] = _convert(t, device, dtype)
    return state


def _convert(t: Any, device: Any, dtype: Any) -> Any:
    # As transformers: only floating-point tensors take the requested dtype.
    if dtype is not None and t.is_floating_point() and t.dtype != dtype:
        t = t.to(dtype)
    return t if str(device) == "cpu" else t.to(device)


def load_state_dict(
    path: str | os.PathLike[str],
    *,
    identities: Identity | Sequence[Identity],
    device: Any = "cpu",
    dtype: Any = None,
    threads: int | None = None,
    source_options: dict[str, Any] | None = None,
    require_signer: SignerKey | None = None,
) -> dict[str, Any]:
    """Opens a sealed model directory and returns all its weights as torch tensors.

    Args:
        path: a ``tensorseal seal-dir`` output (a directory, or its ``s3://`` / ``https://``
            / fsspec URL).
        identities: keys to try.
        device: where the tensors go (decrypted on the CPU, then moved).
        dtype: a torch dtype for the floating-point tensors (others keep theirs), or None.
        threads: decryption threads per shard.
        source_options: for a directory URL (``s3://bucket/prefix/``...): see
            :func:`tensorseal.remote.open_source`.
        require_signer: refuse the model unless its ``model.sig`` is this ECDSA public key's
            (PEM path or bytes) and covers every file (see :func:`open_model_dir`).

    Returns:
        tensor name -> tensor, every shard verified (see :func:`open_model_dir`).

    Example:
        >>> state = load_state_dict("gpt2.sealed", identities=ids, dtype=torch.bfloat16)  # doctest: +SKIP
    """
    with open_model_dir(
        path,
        identities=identities,
        threads=threads,
        source_options=source_options,
        require_signer=require_signer,
    ) as md:
        return load_model_state_dict(md, device=device, dtype=dtype)
