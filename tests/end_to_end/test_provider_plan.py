"""A live-mode verification across every provider, end to end over real sockets.

API (uvicorn) -> Temporal dev server -> worker (production activities and adapters) ->
fake Twilio / Meta / HTTP gateway / SMTP servers -> signed receipts back through the
API's webhook endpoints -> signals -> the workflow falls back. Nothing is mocked in
between: the code the test reads is the one the SMTP server received.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from temporalio.api.enums.v1 import EventType

from otp.domain import DeliveryStatus, ErrorType
from tests.end_to_end.conftest import (
    GATEWAY_AUTH_VALUE,
    META_VERIFY_TOKEN,
    SMTP_FROM,
    TWILIO_AUTH_TOKEN,
    TWILIO_SMS_FROM,
    TWILIO_VOICE_FROM,
    WEBOTP_DOMAIN,
    Stack,
    StartStack,
)
from tests.helpers.provider_fakes import Callback, twilio_signature

PHONE = "+14155550123"
EMAIL = "jane@example.com"
APP_HASH = "FA+9qCX9VSu"
CODE_RE = re.compile(r"\b(\d{6})\b")
# The receipt-to-fallback budget the issue sets ("skips to the next channel within a second").
FALLBACK_BUDGET_S = 1.0


def code_in(text: str) -> str:
    match = CODE_RE.search(text)
    assert match, text
    return match.group(1)


def assert_fast(what: str, callback: Callback, seen: float) -> float:
    """The workflow's move was seen within the budget after the receipt was sent."""
    latency = seen - callback.started
    print(f"{what}: {latency * 1000:.0f} ms from receipt to the next step")
    assert latency < FALLBACK_BUDGET_S, f"{what}: {latency:.3f}s"
    return latency


async def signals(stack: Stack, vid: str) -> int:
    history = await stack.handle(vid).fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    )


async def test_sms_whatsapp_voice_email_fall_back_on_failed_receipts_then_approve(
    start_stack: StartStack,
) -> None:
    stack = await start_stack()
    twilio, meta, smtp = stack.twilio, stack.meta, stack.smtp
    # Provider-side setup: Meta's dashboard verifies the callback URL with the verify token.
    await meta.subscribe(f"{stack.base_url}/v1/webhooks/meta", META_VERIFY_TOKEN)

    vid = await stack.create(
        {
            "to": PHONE,
            "brand": "Acme",
            "app_hash": APP_HASH,
            "channels": [
                {"channel": "sms", "timeout_s": 300},
                {"channel": "whatsapp", "timeout_s": 300},
                {"channel": "voice", "timeout_s": 300},
                {"channel": "email", "to": EMAIL, "timeout_s": 300},
            ],
        }
    )
    run_id = await stack.run_id(vid)

    # ---- step 0: SMS through Twilio, then an `undelivered` status callback.
    sms = await twilio.wait_for_sent("Messages")
    state, _ = await stack.wait_state(
        vid, lambda s: bool(s.deliveries) and s.deliveries[0].provider_message_id == sms.id
    )
    assert state.current_step == 0 and state.deliveries[0].status is DeliveryStatus.SENT
    assert sms.form["To"] == PHONE
    assert sms.form["From"] == TWILIO_SMS_FROM
    body = sms.form["Body"]
    code = code_in(body)
    assert body.startswith(f"Your Acme verification code is {code}.")
    # Android SMS Retriever hash, then the WebOTP line last (per-request hash, OTP_WEBOTP_DOMAIN).
    assert body.endswith(f"\n\n{APP_HASH}\n@{WEBOTP_DOMAIN} #{code}")
    callback = urlsplit(sms.form["StatusCallback"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == (
        f"{stack.base_url}/v1/webhooks/twilio/status"
    )
    assert parse_qs(callback.query) == {"ref": [f"{vid}:{run_id}:1"]}

    receipt = await twilio.status_callback(sms, "undelivered", error_code="30003")
    assert receipt.status_code == 204, receipt.body
    state, seen = await stack.wait_state(vid, lambda s: s.current_step == 1)
    sms_latency = assert_fast("sms -> whatsapp", receipt, seen)
    assert state.deliveries[0].status is DeliveryStatus.FAILED
    assert state.deliveries[0].error_type == "30003"

    # ---- step 1: WhatsApp through Meta, then a `failed` status webhook (131026).
    whatsapp = await meta.wait_for_sent()
    assert whatsapp.at - receipt.started < FALLBACK_BUDGET_S  # the send itself went out too
    await stack.wait_state(
        vid,
        lambda s: len(s.deliveries) == 2 and s.deliveries[1].provider_message_id == whatsapp.id,
    )
    payload = whatsapp.json
    assert payload["messaging_product"] == "whatsapp"
    assert payload["recipient_type"] == "individual"
    assert payload["to"] == PHONE.lstrip("+")
    assert payload["type"] == "template"
    template = payload["template"]
    assert template["name"] == stack.settings.meta_template_name
    assert template["language"] == {"code": "en_US"}
    assert template["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": code}]},
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": code}],
        },
    ]
    assert payload["biz_opaque_callback_data"] == f"{vid}:{run_id}:2"

    receipt = await meta.status_webhook(
        whatsapp,
        "failed",
        errors=[
            {
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
            }
        ],
    )
    assert receipt.status_code == 200, receipt.body
    assert receipt.body == '{"statuses":1,"forwarded":1}'
    state, seen = await stack.wait_state(vid, lambda s: s.current_step == 2)
    whatsapp_latency = assert_fast("whatsapp -> voice", receipt, seen)
    assert state.deliveries[1].status is DeliveryStatus.FAILED
    assert state.deliveries[1].error_type == "131026"

    # ---- step 2: a Twilio call, then CallStatus `no-answer`.
    call = await twilio.wait_for_sent("Calls")
    assert call.at - receipt.started < FALLBACK_BUDGET_S
    await stack.wait_state(
        vid, lambda s: len(s.deliveries) == 3 and s.deliveries[2].provider_message_id == call.id
    )
    assert call.form["To"] == PHONE
    assert call.form["From"] == TWILIO_VOICE_FROM
    assert parse_qs(urlsplit(call.form["StatusCallback"]).query) == {"ref": [f"{vid}:{run_id}:3"]}
    twiml = ET.fromstring(call.form["Twiml"])
    assert twiml.tag == "Response"
    says = [say.text or "" for say in twiml.iter("Say")]
    # Each digit is its own <Say> (read slowly, a pause after each), and the code is read twice.
    assert [text for text in says if len(text) == 1] == list(code) * 2
    assert says[0] == "Your Acme verification code is"
    assert len(twiml.findall("Pause")) >= 2 * len(code)
    assert code not in call.form["Twiml"]  # never spoken as one number

    receipt = await twilio.status_callback(call, "no-answer")
    assert receipt.status_code == 204, receipt.body
    state, seen = await stack.wait_state(vid, lambda s: s.current_step == 3)
    voice_latency = assert_fast("voice -> email", receipt, seen)
    assert state.deliveries[2].status is DeliveryStatus.FAILED

    # ---- step 3: email through SMTP; the user reads the code there and types it in.
    mail = await smtp.sink.wait_for_message()
    assert smtp.sink.received[0][0] - receipt.started < FALLBACK_BUDGET_S
    assert smtp.sink.received[0][1] == [EMAIL]
    assert mail["To"] == EMAIL
    assert mail["From"] == SMTP_FROM
    assert mail["Subject"] == "Your Acme verification code"
    text_part = mail.get_body(preferencelist=("plain",))
    assert text_part is not None
    mailed_code = code_in(text_part.get_content())
    assert mailed_code == code  # one code for the whole verification

    checked = await stack.api.post(f"/v1/verifications/{vid}/check", json={"code": mailed_code})
    assert checked.status_code == 200, checked.text
    assert checked.json() == {
        "id": vid,
        "status": "approved",
        "valid": True,
        "attempts_remaining": 4,
    }

    got = await stack.api.get(f"/v1/verifications/{vid}")
    assert got.status_code == 200, got.text
    public = got.json()
    assert public["status"] == "approved"
    assert public["current_step"] == 3
    assert [
        (d["step_index"], d["kind"], d["channel"], d["provider"], d["status"], d["error_type"])
        for d in public["deliveries"]
    ] == [
        (0, "step", "sms", "twilio", "failed", "30003"),
        (1, "step", "whatsapp", "meta_whatsapp", "failed", "131026"),
        (2, "step", "voice", "twilio", "failed", "receipt_failed"),
        (3, "step", "email", "smtp", "sent", None),
    ]
    for secret in (PHONE, PHONE[1:], EMAIL, code):
        assert secret not in got.text

    # Exactly one send per step: nothing was retried or sent twice.
    assert [r.path.rsplit("/", 1)[-1] for r in twilio.requests] == ["Messages.json", "Calls.json"]
    assert len(meta.requests) == 1 and len(smtp.sink.received) == 1
    assert not stack.gateway.requests
    # Every provider was called with its credentials (the fakes refuse anything else).
    assert all(r.answered in (200, 201) for r in [*twilio.requests, *meta.requests])
    assert await signals(stack, vid) == 3
    print(
        "fallback latencies (receipt sent -> workflow on next step): "
        f"sms {sms_latency * 1000:.0f} ms, whatsapp {whatsapp_latency * 1000:.0f} ms, "
        f"voice {voice_latency * 1000:.0f} ms"
    )


@pytest.mark.parametrize(
    ("twilio_answers", "error_type", "within_s"),
    [
        pytest.param([(400, 21211)], ErrorType.PERMANENT_DELIVERY, 2.0, id="invalid-number-400"),
        # provider_max_attempts = 3; retries back off 1 s then 2 s.
        pytest.param([(503, 20503)] * 3, ErrorType.TRANSIENT_DELIVERY, 6.0, id="unavailable-503x3"),
    ],
)
async def test_sms_fails_over_from_twilio_to_the_http_gateway_within_the_step(
    start_stack: StartStack,
    twilio_answers: list[tuple[int, int]],
    error_type: str,
    within_s: float,
) -> None:
    stack = await start_stack(sms_providers="twilio,http_gateway")
    twilio, gateway = stack.twilio, stack.gateway
    twilio.message_failures = list(twilio_answers)

    started = time.monotonic()
    vid = await stack.create(
        {
            "to": PHONE,
            "channels": [
                {"channel": "sms", "timeout_s": 300},
                {"channel": "email", "to": EMAIL, "timeout_s": 300},
            ],
        }
    )
    run_id = await stack.run_id(vid)
    sent = await gateway.wait_for_sent(within=within_s + 2)
    elapsed = sent.at - started
    print(
        f"twilio {twilio_answers[0]} x{len(twilio_answers)} -> gateway in {elapsed * 1000:.0f} ms"
    )
    assert elapsed < within_s  # nowhere near the step's 300 s timer

    state, _ = await stack.wait_state(
        vid, lambda s: len(s.deliveries) == 2 and s.deliveries[1].status is DeliveryStatus.SENT
    )
    assert state.current_step == 0
    assert [
        (d.step_index, d.channel.value, d.provider, d.status, d.error_type)
        for d in state.deliveries
    ] == [
        (0, "sms", "twilio", DeliveryStatus.FAILED, error_type),
        (0, "sms", "http_gateway", DeliveryStatus.SENT, None),
    ]
    assert state.deliveries[1].provider_message_id == sent.id  # read at `message.id`

    # Twilio was tried exactly as often as the policy allows, always with the same message.
    assert len(twilio.requests) == len(twilio_answers)
    assert [r.answered for r in twilio.requests] == [status for status, _ in twilio_answers]
    assert len({r.form["Body"] for r in twilio.requests}) == 1
    assert {r.form["StatusCallback"].rsplit("ref=", 1)[1] for r in twilio.requests} == {
        f"{vid}%3A{run_id}%3A1"
    }

    # The gateway got the default JSON body, its auth header and the delivery's own key.
    assert len(gateway.requests) == 1
    assert sent.headers["x-api-key"] == GATEWAY_AUTH_VALUE
    assert sent.headers["idempotency-key"] == f"{vid}:{run_id}:2"
    assert set(sent.json) == {"to", "text", "reference"}
    assert sent.json["to"] == PHONE
    assert sent.json["text"] == twilio.requests[0].form["Body"]
    assert sent.json["reference"].startswith("gw_")
    code = code_in(sent.json["text"])

    checked = await stack.api.post(f"/v1/verifications/{vid}/check", json={"code": code})
    assert checked.status_code == 200, checked.text
    assert checked.json()["status"] == "approved"
    public = (await stack.api.get(f"/v1/verifications/{vid}")).json()
    assert [(d["step_index"], d["provider"], d["status"]) for d in public["deliveries"]] == [
        (0, "twilio", "failed"),
        (0, "http_gateway", "sent"),
    ]
    assert not stack.smtp.sink.received  # the plan never reached the email step


async def test_badly_signed_receipts_are_refused_and_do_not_move_the_step(
    start_stack: StartStack,
) -> None:
    stack = await start_stack()
    twilio, meta = stack.twilio, stack.meta
    await meta.subscribe(f"{stack.base_url}/v1/webhooks/meta", META_VERIFY_TOKEN)
    vid = await stack.create(
        {
            "to": PHONE,
            "channels": [
                {"channel": "sms", "timeout_s": 300},
                {"channel": "email", "to": EMAIL, "timeout_s": 300},
            ],
        }
    )
    sms = await twilio.wait_for_sent("Messages")
    await stack.wait_state(
        vid, lambda s: bool(s.deliveries) and s.deliveries[0].provider_message_id == sms.id
    )
    url = sms.form["StatusCallback"]
    form = twilio.status_form(sms, "failed", "30003")

    forged = {
        "wrong token": await twilio.status_callback(
            sms, "failed", error_code="30003", sign_with="not-the-auth-token"
        ),
        "unsigned": await twilio.status_callback(sms, "failed", error_code="30003", signature=""),
        "signed for other parameters": await twilio.status_callback(
            sms,
            "failed",
            error_code="30003",
            signature=twilio_signature(TWILIO_AUTH_TOKEN, url, {**form, "MessageStatus": "sent"}),
        ),
        "signed for another URL": await twilio.status_callback(
            sms,
            "failed",
            error_code="30003",
            signature=twilio_signature(TWILIO_AUTH_TOKEN, url.replace("127.0.0.1", "evil"), form),
        ),
        # A Meta status naming the SMS delivery's key, signed with the wrong secret.
        "meta, wrong secret": await meta.webhook(
            meta.status_payload(
                sms.id,
                PHONE.lstrip("+"),
                "failed",
                reference=parse_qs(urlsplit(url).query)["ref"][0],
                errors=[{"code": 131026, "title": "Message undeliverable"}],
            ),
            sign_with="not-the-app-secret",
        ),
    }
    for name, response in forged.items():
        assert response.status_code == 403, (name, response.body)
        assert '"urn:otp:problem:invalid-signature"' in response.body, name

    # The API signals before it answers: a 403 means nothing reached the workflow.
    assert await signals(stack, vid) == 0
    state, _ = await stack.wait_state(vid, lambda s: True)
    assert state.current_step == 0
    assert [d.status for d in state.deliveries] == [DeliveryStatus.SENT]

    # The genuine callback is accepted and moves the plan on at once.
    genuine = await twilio.status_callback(sms, "failed", error_code="30003")
    assert genuine.status_code == 204, genuine.body
    state, seen = await stack.wait_state(vid, lambda s: s.current_step == 1)
    assert_fast("sms -> email", genuine, seen)
    assert state.deliveries[0].error_type == "30003"
    assert await signals(stack, vid) == 1

    canceled = await stack.api.post(f"/v1/verifications/{vid}/cancel")
    assert canceled.status_code == 200, canceled.text
