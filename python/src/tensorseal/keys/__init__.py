"""Key types: each implements Recipient (wrap) and/or Identity (unwrap) of format.stanza."""

from __future__ import annotations

from typing import Any

__all__ = ["ServiceClient", "ServiceIdentity", "ServiceRecipient"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the service client pulls in ssl and urllib, which loading a model
    # with a local key never needs (import time is part of every load).
    if name in __all__:
        from . import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
