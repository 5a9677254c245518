"""Provider receipts without a server: signatures, parsing, forwarding to verifications."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from api.problems import InvalidWebhookSignature, WebhookNotConfigured
from api.services import receipts
from otp.domain import DeliveryReceiptInput, DeliveryStatus
from otp.receipts.twilio import twilio_signature

VID = "ver_" + "b" * 26
TOKEN = "twilio-auth-token"
URL = f"https://otp.example.com/v1/webhooks/twilio/status?ref={VID}:run:1"


@dataclass
class FakeWorkflows:
    running: set[str] = field(default_factory=set)
    signaled: list[tuple[str, DeliveryReceiptInput]] = field(default_factory=list)

    async def signal_receipt(self, verification_id: str, receipt: DeliveryReceiptInput) -> bool:
        self.signaled.append((verification_id, receipt))
        return verification_id in self.running


def test_an_unconfigured_provider_is_404() -> None:
    with pytest.raises(WebhookNotConfigured):
        receipts.configured("twilio", None)
    assert receipts.configured("twilio", SecretStr("t")) == "t"


def test_a_twilio_callback_is_read_only_when_signed() -> None:
    params = [("MessageSid", "SM1"), ("MessageStatus", "failed"), ("ErrorCode", "30003")]
    with pytest.raises(InvalidWebhookSignature):
        receipts.twilio_receipt(TOKEN, url=URL, params=params, signature="bad", path="/p")
    found = receipts.twilio_receipt(
        TOKEN, url=URL, params=params, signature=twilio_signature(TOKEN, URL, params), path="/p"
    )
    assert found is not None and found.verification_id == VID
    assert (found.input.provider, found.input.status, found.input.error_code) == (
        "twilio",
        DeliveryStatus.FAILED,
        "30003",
    )
    # Genuine but without a delivery key: nothing to forward.
    bare = "https://otp.example.com/v1/webhooks/twilio/status"
    signature = twilio_signature(TOKEN, bare, params)
    assert (
        receipts.twilio_receipt(TOKEN, url=bare, params=params, signature=signature, path="/p")
        is None
    )


def _meta(body: bytes, secret: str = "app-secret") -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_meta_statuses_keep_their_delivery_keys() -> None:
    payload = {
        "entry": [
            {
                "changes": [
                    {
                        "value": {
                            "statuses": [
                                {
                                    "id": "wamid.1",
                                    "status": "delivered",
                                    "biz_opaque_callback_data": f"{VID}:r:1",
                                },
                                {"id": "wamid.2", "status": "read"},
                            ]
                        }
                    }
                ]
            }
        ]
    }
    body = json.dumps(payload).encode()
    with pytest.raises(InvalidWebhookSignature):
        receipts.meta_receipts("app-secret", body=body, signature=_meta(body, "other"), path="/p")
    found = receipts.meta_receipts("app-secret", body=body, signature=_meta(body), path="/p")
    assert [(r.input.provider_message_id, r.verification_id) for r in found] == [
        ("wamid.1", VID),
        ("wamid.2", None),
    ]
    assert receipts.meta_receipts("app-secret", body=b"{", signature=_meta(b"{"), path="/p") == []


def test_the_subscription_challenge_needs_the_verify_token() -> None:
    answer = receipts.meta_challenge("vt", mode="subscribe", token="vt", challenge="42")
    assert answer == "42"
    with pytest.raises(InvalidWebhookSignature):
        receipts.meta_challenge("vt", mode="subscribe", token="wrong", challenge="42")


async def test_forward_counts_only_receipts_that_reached_a_running_verification() -> None:
    finished = "ver_" + "c" * 26
    workflows = FakeWorkflows(running={VID})
    receipt = DeliveryReceiptInput(
        provider="twilio", provider_message_id="SM1", status=DeliveryStatus.DELIVERED
    )
    found = [
        receipts.Receipt(receipt, VID),
        receipts.Receipt(receipt, finished),
        receipts.Receipt(receipt, None),
    ]
    forwarded = await receipts.forward(workflows, None, found)  # type: ignore[arg-type]
    assert forwarded == 1
    assert [vid for vid, _ in workflows.signaled] == [VID, finished]
