"""Webhook signatures, after the Standard Webhooks specification (https://www.standardwebhooks.com).

Each request carries `webhook-id` (the event's id, the same on every retry: a receiver drops what it has seen),
`webhook-timestamp` (Unix seconds: a receiver refuses old ones, so a captured request cannot be replayed later) and
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the webhook's secret. The spec
signs the id with the timestamp and body, so neither can be swapped either. docs/api.md shows a receiver's check.

A webhook's secret is derived, not stored: HMAC-SHA256 keyed with FLEET_SECRET over the tenant and the webhook's id.
The database then holds nothing that signs (a leaked dump or backup forges no delivery), and there is no second key
to manage. The price: rotating FLEET_SECRET changes every webhook's secret, so their receivers need the new ones
(register the webhooks again). The secret is shown once, when the webhook is created.
"""

import base64
import hashlib
import hmac

from pydantic import SecretStr

SECRET_PREFIX = "whsec_"
SECRET_PURPOSE = b"mats webhook secret v1"
SIGNATURE_VERSION = "v1"


def webhook_key(fleet_secret: SecretStr, tenant_id: str, webhook_id: str) -> bytes:
    """The webhook's signing key: the same for the same fleet secret, tenant and webhook, unguessable without."""
    message = b"\0".join([SECRET_PURPOSE, tenant_id.encode(), webhook_id.encode()])
    return hmac.new(fleet_secret.get_secret_value().encode(), message, hashlib.sha256).digest()


def secret_text(key: bytes) -> str:
    """The key as a receiver configures it: `whsec_` and its base64, the spec's format."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def signature_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers that let a receiver check the request came from us, unchanged, and recently."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"{SIGNATURE_VERSION},{signature}",
    }
