"""Key types: each implements Recipient (wrap) and/or Identity (unwrap) of format.stanza."""

from .service import ServiceClient, ServiceIdentity, ServiceRecipient

__all__ = ["ServiceClient", "ServiceIdentity", "ServiceRecipient"]
