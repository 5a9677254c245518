"""Routing rules end to end: rules saved through the admin API pick each country's sender,
and the From that the Twilio fake received proves it.

API (uvicorn) -> Temporal dev server -> worker (production adapters) -> TwilioFake.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import SecretStr
from sqlmodel import select

from otp.domain import EventType
from otp.store import Store
from otp.store.tables import VerificationEvent
from tests.end_to_end.conftest import TWILIO_SMS_FROM, StartStack

ADMIN_TOKEN = "routing-admin-token-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RULES = "/v1/admin/applications/default/routing-rules"
UK_PHONE = "+447400123456"
US_PHONE = "+14155550123"
US_LONG_CODE = "+15005550009"


async def send_reasons(store: Store, vid: str, within: float = 5.0) -> list[str]:
    """The event log's send-attempt reasons of a verification (written in the background)."""
    deadline = time.monotonic() + within
    while True:
        async with store.session() as session:
            rows = (
                await session.exec(
                    select(VerificationEvent).where(
                        VerificationEvent.verification_id == vid,
                        VerificationEvent.type == EventType.SEND_ATTEMPTED.value,
                    )
                )
            ).all()
        if rows or time.monotonic() > deadline:
            return [row.reason or "" for row in rows]
        await asyncio.sleep(0.05)


async def test_uk_alphanumeric_and_us_long_code_by_rules_and_us_alphanumeric_refused(
    start_stack: StartStack, store: Store
) -> None:
    stack = await start_stack(admin_token=SecretStr(ADMIN_TOKEN))
    api, twilio = stack.api, stack.twilio

    uk = await api.post(
        RULES,
        headers=ADMIN,
        json={
            "channel": "sms",
            "country": "GB",
            "providers": ["twilio"],
            "sender": {"type": "alphanumeric", "value": "ACME"},
        },
    )
    assert uk.status_code == 201, uk.text
    us = await api.post(
        RULES,
        headers=ADMIN,
        json={
            "channel": "sms",
            "country": "US",
            "providers": ["twilio"],
            "sender": {"type": "long_code", "value": US_LONG_CODE},
        },
    )
    assert us.status_code == 201, us.text

    # An alphanumeric sender for the US breaks its facts: refused, nothing changed.
    refused = await api.post(
        RULES,
        headers=ADMIN,
        json={
            "channel": "sms",
            "country": "US",
            "prefix": "+1415",
            "sender": {"type": "alphanumeric", "value": "ACME"},
        },
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "urn:otp:problem:sender-not-allowed"
    assert problem["country"] == "US"
    assert problem["source"] == "https://www.twilio.com/en-us/guidelines/us/sms"
    assert "not supported" in problem["detail"]
    listed = (await api.get(RULES, headers=ADMIN)).json()["rules"]
    assert sorted(r["country"] for r in listed) == ["GB", "US"]

    explained = await api.get(
        "/v1/admin/applications/default/routes/explain",
        headers=ADMIN,
        params={"to": UK_PHONE, "channel": "sms"},
    )
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["match"] == "country"
    assert body["rule_id"] == uk.json()["id"]
    assert body["providers"] == ["twilio"]
    assert body["sender"] == {"type": "alphanumeric", "value": "ACME"}
    assert UK_PHONE not in explained.text  # the destination is masked

    uk_vid = await stack.create({"to": UK_PHONE, "channels": [{"channel": "sms"}]})
    uk_sent = await twilio.wait_for_sent("Messages", 1)
    assert uk_sent.form["To"] == UK_PHONE
    assert uk_sent.form["From"] == "ACME"
    assert "MessagingServiceSid" not in uk_sent.form

    us_vid = await stack.create({"to": US_PHONE, "channels": [{"channel": "sms"}]})
    us_sent = await twilio.wait_for_sent("Messages", 2)
    assert us_sent.form["To"] == US_PHONE
    assert us_sent.form["From"] == US_LONG_CODE != TWILIO_SMS_FROM

    # The delivery records and the event log say which rule and sender were used.
    state, _ = await stack.wait_state(uk_vid, lambda s: bool(s.deliveries))
    assert state.deliveries[0].rule_id == uk.json()["id"]
    assert state.deliveries[0].sender is not None
    assert state.deliveries[0].sender.label() == "alphanumeric:ACME"
    read = (await api.get(f"/v1/verifications/{us_vid}")).json()
    assert read["deliveries"][0]["rule_id"] == us.json()["id"]
    assert read["deliveries"][0]["sender"] == {"type": "long_code", "value": US_LONG_CODE}
    reasons = await send_reasons(store, us_vid)
    assert reasons == [f"step; rule {us.json()['id']}; sender long_code:{US_LONG_CODE}"]


async def test_without_rules_the_global_sender_and_an_unmatched_country_explains_global(
    start_stack: StartStack,
) -> None:
    stack = await start_stack(admin_token=SecretStr(ADMIN_TOKEN))
    explained = await stack.api.get(
        "/v1/admin/applications/default/routes/explain",
        headers=ADMIN,
        params={"to": US_PHONE},
    )
    assert explained.status_code == 200, explained.text
    assert explained.json()["match"] == "global"
    assert explained.json()["rule_id"] is None
    assert explained.json()["providers"] == ["twilio"]
    await stack.create({"to": US_PHONE, "channels": [{"channel": "sms"}]})
    sent = await stack.twilio.wait_for_sent("Messages", 1)
    assert sent.form["From"] == TWILIO_SMS_FROM
