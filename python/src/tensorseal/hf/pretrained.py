"""transformers models from a sealed model directory, with no plaintext file anywhere.

The config (and generation config) are parsed from memory (``PreTrainedConfig.from_dict``),
the weights decrypted into a state dict (:mod:`.state_dict`), and transformers' own loader
builds the model from both: ``from_pretrained(None, config=..., state_dict=...)`` creates the
model on the meta device, so its parameters are never allocated twice, and applies what a load
from a directory applies (tied weights, key renames, dtype, device_map). Nothing is looked up
on the Hub or on disk: there is no path for transformers to read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..errors import error, fail
from ..format.stanza import Identity
from .model_dir import ModelDir, open_model_dir
from .provenance import SignerKey
from .state_dict import load_model_state_dict

CONFIG_NAME = "config.json"
GENERATION_CONFIG_NAME = "generation_config.json"
# Options that would read or write files (plaintext offload, code from the directory) or that
# this function sets itself.
_REFUSED = ("config", "state_dict", "offload_folder", "trust_remote_code", "gguf_file", "cache_dir")


def config_from(md: ModelDir, model_class: Any) -> Any:
    """The model's config, built from the sealed ``config.json`` in memory."""
    from transformers import AutoConfig, PreTrainedConfig

    doc = md.read_json(CONFIG_NAME)
    where = md.sealed_path(CONFIG_NAME)
    if not isinstance(doc, dict):
        raise error("E_MALFORMED", "config is not a JSON object").naming(where)
    if doc.get("auto_map"):
        remote = error("E_UNSUPPORTED", "the model needs remote code (auto_map), which a sealed model does not load")
        raise remote.naming(where)
    config_class = getattr(model_class, "config_class", None)
    if isinstance(config_class, type) and issubclass(config_class, PreTrainedConfig):
        return config_class.from_dict(doc)
    model_type = doc.get("model_type")
    if not isinstance(model_type, str):
        raise error("E_MALFORMED", "config has no model_type").naming(where)
    return type(AutoConfig.for_model(model_type)).from_dict(doc)


def from_pretrained(
    model_class: Any,
    path: str | os.PathLike[str],
    *,
    identities: Identity | Sequence[Identity],
    device: Any = None,
    dtype: Any = None,
    threads: int | None = None,
    source_options: dict[str, Any] | None = None,
    require_signer: SignerKey | None = None,
    **kwargs: Any,
) -> Any:
    """``model_class.from_pretrained`` for a sealed model directory (transformers >= 5).

    Args:
        model_class: a model class (``GPT2LMHeadModel``) or an auto class
            (``AutoModelForCausalLM``).
        path: a ``tensorseal seal-dir`` output (a directory, or its ``s3://`` / ``https://``
            / fsspec URL) of a ``save_pretrained`` directory.
        identities: keys to try.
        device: where the model goes (``"cuda:0"``; passed as ``device_map``), default CPU.
        dtype: torch dtype of the model, or ``"auto"`` / None (the config's or the weights').
        threads: decryption threads per shard.
        source_options: for a directory URL (``s3://bucket/prefix/``...): see
            :func:`tensorseal.remote.open_source`.
        require_signer: refuse the model unless its ``model.sig`` is this ECDSA public key's
            (PEM path or bytes) and covers every file (see :func:`open_model_dir`).
        **kwargs: passed to transformers' ``from_pretrained`` (``attn_implementation``...);
            ``offload_folder``, ``trust_remote_code``, ``config``, ``state_dict``,
            ``gguf_file`` and ``cache_dir``, and a ``device_map`` with ``"disk"``, are refused
            (``E_USAGE``): they would read from or write plaintext to the file system.

    Returns:
        The model, in eval mode, as ``from_pretrained`` returns it.

    Example:
        >>> model = from_pretrained(AutoModelForCausalLM, "gpt2.sealed", identities=ids,  # doctest: +SKIP
        ...                         dtype=torch.bfloat16, device="cuda:0")
    """
    refused = [k for k in _REFUSED if k in kwargs]
    if refused:
        fail("E_USAGE", f"from_pretrained on a sealed model does not take {', '.join(refused)}")
    if device is not None and "device_map" in kwargs:
        fail("E_USAGE", "give device or device_map, not both")
    device_map = kwargs.pop("device_map", device)
    if isinstance(device_map, dict) and "disk" in {str(v) for v in device_map.values()}:
        fail("E_USAGE", "device_map puts weights on disk: a sealed model's plaintext never goes to disk")
    with open_model_dir(
        path,
        identities=identities,
        threads=threads,
        source_options=source_options,
        require_signer=require_signer,
    ) as md:
        config = config_from(md, model_class)
        if GENERATION_CONFIG_NAME in md and "generation_config" not in kwargs:
            from transformers import GenerationConfig

            kwargs["generation_config"] = GenerationConfig.from_dict(md.read_json(GENERATION_CONFIG_NAME))
        state = load_model_state_dict(md)
    concrete, config = model_class_for(model_class, config)
    return concrete.from_pretrained(None, config=config, state_dict=state, dtype=dtype, device_map=device_map, **kwargs)


def model_class_for(model_class: Any, config: Any) -> tuple[Any, Any]:
    """The concrete class an auto class picks for ``config`` (and the config it takes), as
    the auto class's own ``from_pretrained`` does; which needs a path, and there is none."""
    mapping = getattr(model_class, "_model_mapping", None)
    if mapping is None:
        return model_class, config
    if type(config) not in mapping:
        fail("E_UNSUPPORTED", f"{model_class.__name__} has no model for {type(config).__name__}")
    from transformers.models.auto.auto_factory import _get_model_class

    concrete = _get_model_class(config, mapping)
    text_config_class = getattr(config, "sub_configs", {}).get("text_config")
    if text_config_class is not None and getattr(concrete, "config_class", None) == text_config_class:
        parent = config
        config = config.get_text_config()
        if getattr(parent, "quantization_config", None) is not None:
            config.quantization_config = parent.quantization_config
    return concrete, config
