"""An application's own Twilio account, end to end over real sockets.

Two Twilio fakes: the service's global account (the stack's) and the application's own
(another account SID and auth token). The application's sends go through its own
account, its receipts are checked with that account's token, reads never show the
token, and the test route reports a success and a provider error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from pydantic import SecretStr

from tests.end_to_end.conftest import (
    META_APP_SECRET,
    META_VERIFY_TOKEN,
    META_VERSION,
    TWILIO_AUTH_TOKEN,
    Stack,
    StartStack,
)
from tests.end_to_end.test_provider_plan import signals
from tests.helpers.provider_fakes import MetaFake, TwilioFake, twilio_signature

ADMIN_TOKEN = "otp_admin_e2e_provider_accounts_4f1c9a"
OWN_SID = "AC" + "a1b2" * 8
OWN_TOKEN = "own-account-auth-token-5c2e91d7"
OWN_FROM = "+15005550009"
PHONE = "+14155550123"
EMAIL = "jane@example.com"
ACCOUNTS = "/v1/admin/applications/default/provider-accounts"


@pytest.fixture
async def own_twilio() -> AsyncIterator[TwilioFake]:
    async with TwilioFake(OWN_SID, OWN_TOKEN) as fake:
        yield fake


async def _admin(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
    )


def _without_account(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v[0]) for k, v in parse_qs(parts.query).items() if k != "account"]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_an_application_sends_and_verifies_receipts_with_its_own_twilio_account(
    start_stack: StartStack, own_twilio: TwilioFake
) -> None:
    stack = await start_stack(admin_token=SecretStr(ADMIN_TOKEN))
    async with await _admin(stack) as admin:
        # Bad input: a 422 problem, nothing stored.
        for fields in (
            {"account_sid": OWN_SID, "auth_token": OWN_TOKEN, "sms_from": OWN_FROM, "bogus": 1},
            {"account_sid": OWN_SID, "auth_token": OWN_TOKEN},  # no sender
        ):
            refused = await admin.put(f"{ACCOUNTS}/twilio", json={"fields": fields})
            assert refused.status_code == 422, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
        assert (await admin.get(f"{ACCOUNTS}/twilio")).status_code == 404
        assert (await admin.put(f"{ACCOUNTS}/nexmo", json={"fields": {}})).status_code == 422

        fields = {
            "account_sid": OWN_SID,
            "auth_token": OWN_TOKEN,
            "sms_from": OWN_FROM,
            "base_url": own_twilio.url,
        }
        created = await admin.put(f"{ACCOUNTS}/twilio", json={"fields": fields})
        assert created.status_code == 201, created.text
        account = created.json()
        assert account["version"] == 1
        assert account["secrets"] == {"auth_token": {"set": True, "hint": "…" + OWN_TOKEN[-4:]}}
        assert "auth_token" not in account["fields"]
        assert account["receipt_url"] == (
            f"{stack.base_url}/v1/webhooks/twilio/status?account={account['id']}"
        )
        reads = [
            created,
            await admin.get(ACCOUNTS),
            await admin.get(f"{ACCOUNTS}/twilio"),
        ]
        for read in reads:
            assert read.status_code in (200, 201), read.text
            assert OWN_TOKEN not in read.text
            assert OWN_TOKEN[:-4] not in read.text

        # A verification of this application goes out through its own account only.
        vid = await stack.create(
            {
                "to": PHONE,
                "channels": [
                    {"channel": "sms", "timeout_s": 300},
                    {"channel": "email", "to": EMAIL, "timeout_s": 300},
                ],
            }
        )
        sms = await own_twilio.wait_for_sent("Messages")
        assert sms.form["From"] == OWN_FROM
        assert not stack.twilio.requests  # the global account received nothing
        await stack.wait_state(
            vid, lambda s: bool(s.deliveries) and s.deliveries[0].provider_message_id == sms.id
        )
        url = sms.form["StatusCallback"]
        assert parse_qs(urlsplit(url).query)["account"] == [account["id"]]

        # Receipts: only this account's token on this account's URL is accepted.
        form = own_twilio.status_form(sms, "failed", "30003")
        global_url = _without_account(url)
        forged = {
            "global token on the account URL": await own_twilio.status_callback(
                sms, "failed", error_code="30003", sign_with=TWILIO_AUTH_TOKEN
            ),
            "account token on the global URL": await own_twilio.post(
                global_url,
                data=form,
                headers={"X-Twilio-Signature": twilio_signature(OWN_TOKEN, global_url, form)},
            ),
            "unknown account": await own_twilio.post(
                url.replace(account["id"], "pa_" + "a" * 24),
                data=form,
                headers={
                    "X-Twilio-Signature": twilio_signature(
                        OWN_TOKEN, url.replace(account["id"], "pa_" + "a" * 24), form
                    )
                },
            ),
        }
        for name, response in forged.items():
            assert response.status_code == 403, (name, response.body)
            assert "invalid-signature" in response.body, name
        assert await signals(stack, vid) == 0

        genuine = await own_twilio.status_callback(sms, "failed", error_code="30003")
        assert genuine.status_code == 204, genuine.body
        state, _ = await stack.wait_state(vid, lambda s: s.current_step == 1)
        assert state.deliveries[0].error_type == "30003"
        await stack.api.post(f"/v1/verifications/{vid}/cancel")

        # The test route: a success, then the provider's error, through the account.
        ok = await admin.post(f"{ACCOUNTS}/twilio/test", json={"to": PHONE})
        assert ok.status_code == 200, ok.text
        report = ok.json()
        assert report["ok"] is True and report["mode"] == "live"
        assert report["channel"] == "sms" and report["account_id"] == account["id"]
        assert report["message_id"] == own_twilio.sent("Messages")[-1].id

        own_twilio.message_failures.append((400, 21211))
        failed = await admin.post(f"{ACCOUNTS}/twilio/test", json={"to": PHONE})
        assert failed.status_code == 200, failed.text
        report = failed.json()
        assert report["ok"] is False
        assert report["error"]["code"] == "21211"
        assert report["error"]["reason"]
        assert OWN_TOKEN not in failed.text
        assert not stack.twilio.requests

        # mode=test: through the sandbox, whose magic numbers give errors.
        sandboxed = await admin.post(
            f"{ACCOUNTS}/twilio/test", params={"mode": "test"}, json={"to": "+15005550001"}
        )
        assert sandboxed.status_code == 200, sandboxed.text
        assert sandboxed.json()["ok"] is False
        assert sandboxed.json()["error"]["reason"] == "invalid_number"
        bad_to = await admin.post(f"{ACCOUNTS}/twilio/test", json={"to": "not a number"})
        assert bad_to.status_code == 422, bad_to.text

        # Another application, without an account of its own: the global account sends.
        other = await admin.post("/v1/admin/applications", json={"name": "Other", "brand": "Other"})
        assert other.status_code == 201, other.text
        key = await admin.post(
            f"/v1/admin/applications/{other.json()['id']}/keys", json={"mode": "live"}
        )
        assert key.status_code == 201, key.text
        started = await stack.api.post(
            "/v1/verifications",
            json={"to": PHONE, "channels": [{"channel": "sms", "timeout_s": 300}]},
            headers={"Authorization": f"Bearer {key.json()['key']}"},
        )
        assert started.status_code == 201, started.text
        global_sms = await stack.twilio.wait_for_sent("Messages")
        assert "account=" not in global_sms.form["StatusCallback"]
        assert len(own_twilio.sent("Messages")) == 2  # the first verification and one test
        await stack.api.post(
            f"/v1/verifications/{started.json()['id']}/cancel",
            headers={"Authorization": f"Bearer {key.json()['key']}"},
        )

        # Rotation: a PUT replaces the account (new version), still without the secret.
        rotated = await admin.put(
            f"{ACCOUNTS}/twilio", json={"fields": {**fields, "auth_token": OWN_TOKEN + "x"}}
        )
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["version"] == 2 and rotated.json()["id"] == account["id"]
        assert OWN_TOKEN not in rotated.text

        removed = await admin.delete(f"{ACCOUNTS}/twilio")
        assert removed.status_code == 204
        assert (await admin.get(f"{ACCOUNTS}/twilio")).status_code == 404
        assert (await admin.delete(f"{ACCOUNTS}/twilio")).status_code == 404


OWN_META_PHONE_ID = "209876543210987"
OWN_META_TOKEN = "EAAown-meta-access-token"
OWN_META_SECRET = "own-meta-app-secret-77aa"
OWN_META_VERIFY = "own-meta-verify-token"


@pytest.fixture
async def own_meta() -> AsyncIterator[MetaFake]:
    fake = MetaFake(
        api_version=META_VERSION,
        phone_number_id=OWN_META_PHONE_ID,
        access_token=OWN_META_TOKEN,
        app_secret=OWN_META_SECRET,
    )
    async with fake:
        yield fake


async def test_meta_statuses_are_checked_with_the_accounts_app_secret(
    start_stack: StartStack, own_meta: MetaFake
) -> None:
    stack = await start_stack(admin_token=SecretStr(ADMIN_TOKEN))
    async with await _admin(stack) as admin:
        created = await admin.put(
            f"{ACCOUNTS}/meta_whatsapp",
            json={
                "fields": {
                    "access_token": OWN_META_TOKEN,
                    "phone_number_id": OWN_META_PHONE_ID,
                    "app_secret": OWN_META_SECRET,
                    "verify_token": OWN_META_VERIFY,
                    "api_version": META_VERSION,
                    "base_url": own_meta.url,
                }
            },
        )
        assert created.status_code == 201, created.text
        account = created.json()
        for secret in (OWN_META_TOKEN, OWN_META_SECRET, OWN_META_VERIFY):
            assert secret not in created.text
        receipt_url = account["receipt_url"]
        assert receipt_url == f"{stack.base_url}/v1/webhooks/meta?account={account['id']}"

    # The app dashboard's challenge: the account's verify token, not the global one.
    async def challenge(token: str) -> httpx.Response:
        query = {"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "c4a1"}
        return await own_meta.outbound.get(f"{receipt_url}&{urlencode(query)}")

    assert (await challenge(META_VERIFY_TOKEN)).status_code == 403
    answered = await challenge(OWN_META_VERIFY)
    assert answered.status_code == 200 and answered.text == "c4a1"
    own_meta.webhook_url = receipt_url

    vid = await stack.create(
        {
            "to": PHONE,
            "channels": [
                {"channel": "whatsapp", "timeout_s": 300},
                {"channel": "email", "to": EMAIL, "timeout_s": 300},
            ],
        }
    )
    whatsapp = await own_meta.wait_for_sent()
    assert not stack.meta.requests  # the global account received nothing
    await stack.wait_state(
        vid, lambda s: bool(s.deliveries) and s.deliveries[0].provider_message_id == whatsapp.id
    )
    payload = own_meta.status_payload(
        whatsapp.id,
        whatsapp.json["to"],
        "failed",
        reference=whatsapp.json.get("biz_opaque_callback_data"),
        errors=[{"code": 131026, "title": "Message undeliverable"}],
    )
    forged = await own_meta.webhook(payload, sign_with=META_APP_SECRET)
    assert forged.status_code == 403, forged.body
    assert await signals(stack, vid) == 0

    genuine = await own_meta.webhook(payload)
    assert genuine.status_code == 200, genuine.body
    assert genuine.body == '{"statuses":1,"forwarded":1}'
    await stack.wait_state(vid, lambda s: s.current_step == 1)
    await stack.api.post(f"/v1/verifications/{vid}/cancel")
