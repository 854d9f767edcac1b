from datetime import UTC, datetime

import standardwebhooks
from pydantic import SecretStr

from orchestrator.webhook_signing import secret_text, signature_headers, webhook_key

FLEET_SECRET = SecretStr("a-fleet-secret-of-enough-length-0123456789")


def test_a_webhook_s_secret_is_its_own_and_the_same_each_time_it_is_derived() -> None:
    key = webhook_key(FLEET_SECRET, "acme", "wh_1")

    assert key == webhook_key(FLEET_SECRET, "acme", "wh_1")
    assert len({key, webhook_key(FLEET_SECRET, "acme", "wh_2"), webhook_key(FLEET_SECRET, "other", "wh_1")}) == 3
    assert key != webhook_key(SecretStr("another-fleet-secret-of-enough-length-01"), "acme", "wh_1")


def test_the_headers_are_what_the_standard_webhooks_library_signs_and_verifies() -> None:
    key = webhook_key(FLEET_SECRET, "acme", "wh_1")
    body = b'{"id":"1-0","event_type":"TASK_COMPLETED"}'
    timestamp = int(datetime.now(UTC).timestamp())

    headers = signature_headers(key, "1-0", timestamp, body)

    library = standardwebhooks.Webhook(secret_text(key))
    assert headers["webhook-signature"] == library.sign("1-0", datetime.fromtimestamp(timestamp, UTC), body.decode())
    assert library.verify(body, headers) == {"id": "1-0", "event_type": "TASK_COMPLETED"}
