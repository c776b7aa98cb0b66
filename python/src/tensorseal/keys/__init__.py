"""Key types: each implements Recipient (wrap) and/or Identity (unwrap) of format.stanza."""
