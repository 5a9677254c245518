"""The official `twilio` Python SDK, unchanged but for the Verify base URL, against the service.

The SDK is blocking: every call runs in a thread, the service being served on this
test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from api.problems import (
    MaxSendsReached,
    RiskPolicyRefused,
    ServiceUnavailable,
    UpstreamError,
    VerificationFinished,
)
from api.services.twilio_verify import twilio_error_of, verification_id_of, verification_sid
from api.services.verification_workflows import new_verification_id
from otp.applications.model import DEFAULT_APPLICATION_ID
from otp.domain import Mode
from otp.risk.policy import Rate, RiskSettings
from otp.store import Store
from otp.store.applications import create_api_key, create_application
from tests.helpers.api import Keys, code_in, wrong_code

T = TypeVar("T")


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


def twilio_client(service_url: str, username: str, password: str) -> Client:
    client = Client(username, password)
    client.verify.base_url = service_url  # the one change a Twilio user makes
    return client


async def sandbox_code(
    http: httpx.AsyncClient, keys: Keys, verification_id: str | None, count: int
) -> str:
    assert verification_id is not None, "not a sid this service answers"
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        response = await http.get(
            "/v1/sandbox/messages",
            params={"verification_id": verification_id},
            headers=keys.test_headers,
        )
        messages = response.json()["messages"]
        if len(messages) >= count or asyncio.get_running_loop().time() > deadline:
            assert len(messages) == count, messages
            return code_in(messages[0])
        await asyncio.sleep(0.05)


async def rest_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as raised:
        await call(fn, *args, **kwargs)
    return raised.value


async def test_the_python_sdk_drives_verify_v2(service_url: str, keys: Keys) -> None:
    client = twilio_client(service_url, DEFAULT_APPLICATION_ID, keys.test)
    verify = client.verify.v2
    async with httpx.AsyncClient(base_url=service_url) as http:
        # Services: create, fetch, update, list in pages, delete.
        service = await call(verify.services.create, friendly_name="Acme", code_length=6)
        assert service.sid.startswith("VA") and len(service.sid) == 34
        assert service.code_length == 6 and service.friendly_name == "Acme"
        extra = [
            await call(verify.services.create, friendly_name=f"Extra {i}", psd2_enabled=True)
            for i in range(2)
        ]
        assert extra[0].psd2_enabled is True
        fetched = await call(verify.services(service.sid).fetch)
        assert fetched.friendly_name == "Acme"
        updated = await call(verify.services(service.sid).update, friendly_name="Acme Inc")
        assert updated.friendly_name == "Acme Inc"
        listed = await call(verify.services.list, page_size=2)  # follows next_page_url
        assert {s.sid for s in listed} >= {service.sid, *(s.sid for s in extra)}
        first_page = await call(verify.services.page, page_size=2)
        assert len(list(first_page)) == 2 and first_page.next_page_url is not None
        await call(verify.services(extra[1].sid).delete)
        assert (await rest_error(verify.services(extra[1].sid).fetch)).code == 20404

        # Start, check wrong then right, fetch; a check after approval is 20404 and why.
        to = "+14155550141"
        started = await call(
            verify.services(service.sid).verifications.create, to=to, channel="sms"
        )
        assert started.sid.startswith("VE") and started.status == "pending"
        assert started.to == to and started.channel == "sms" and started.valid is False
        vid = verification_id_of(started.sid)
        code = await sandbox_code(http, keys, vid, 1)
        assert len(code) == 6
        again = await call(verify.services(service.sid).verifications.create, to=to, channel="sms")
        assert again.sid == started.sid  # one pending verification per destination and service
        checks = verify.services(service.sid).verification_checks
        wrong = await call(checks.create, to=to, code=wrong_code(code))
        assert (wrong.status, wrong.valid) == ("pending", False)
        right = await call(checks.create, verification_sid=started.sid, code=code)
        assert (right.status, right.valid, right.sid) == ("approved", True, started.sid)
        fetched_v = await call(verify.services(service.sid).verifications(started.sid).fetch)
        assert fetched_v.status == "approved"
        after = await rest_error(checks.create, verification_sid=started.sid, code=code)
        assert (after.status, after.code) == (404, 20404)
        assert "approved" in after.msg

        # Cancel.
        other = await call(
            verify.services(service.sid).verifications.create, to="+14155550142", channel="sms"
        )
        canceled = await call(
            verify.services(service.sid).verifications(other.sid).update, status="canceled"
        )
        assert canceled.status == "canceled"
        gone = await rest_error(checks.create, verification_sid=other.sid, code="123456")
        assert (gone.status, gone.code) == (404, 20404)

        # Approve out of band (Status=approved): as a correct check would.
        approve = await call(
            verify.services(service.sid).verifications.create, to="+14155550144", channel="sms"
        )
        approved = await call(
            verify.services(service.sid).verifications(approve.sid).update, status="approved"
        )
        assert approved.status == "approved" and approved.valid is True

        # Max check attempts: five wrong codes, then 60202.
        limited = await call(
            verify.services(service.sid).verifications.create, to="+14155550143", channel="sms"
        )
        limited_code = await sandbox_code(http, keys, verification_id_of(limited.sid), 1)
        statuses = [
            (
                await call(
                    checks.create, verification_sid=limited.sid, code=wrong_code(limited_code)
                )
            ).status
            for _ in range(5)
        ]
        assert statuses[-1] == "max_attempts_reached", statuses
        maxed = await rest_error(checks.create, verification_sid=limited.sid, code=limited_code)
        assert (maxed.status, maxed.code) == (429, 60202)

        # Invalid number and parameters: 60200; unknown sid: 20404.
        invalid = await rest_error(
            verify.services(service.sid).verifications.create, to="+1", channel="sms"
        )
        assert (invalid.status, invalid.code) == (400, 60200)
        bad_channel = await rest_error(
            verify.services(service.sid).verifications.create, to=to, channel="sna"
        )
        assert bad_channel.code == 60200
        bad_hash = await rest_error(
            verify.services(service.sid).verifications.create,
            to="+14155550149",
            channel="sms",
            app_hash="short",
        )
        assert bad_hash.code == 60200 and "`AppHash`" in bad_hash.msg
        unknown = await rest_error(
            verify.services(service.sid).verifications("VE" + "0" * 32).fetch
        )
        assert unknown.code == 20404

        # Attempts and their summary: the sends of this service's verifications (event log).
        attempts = verify.verification_attempts
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            sent = await call(attempts.list, verify_service_sid=service.sid)
            if len(sent) >= 4 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.1)
        # started (the second create sent nothing), other, approve, limited
        assert len(sent) == 4, sent
        assert {a.service_sid for a in sent} == {service.sid}
        assert all(a.sid.startswith("VL") and a.channel == "sms" for a in sent)
        mine = await call(attempts.list, verification_sid=started.sid)
        assert [a.conversion_status for a in mine] == ["converted"]
        one = await call(attempts(mine[0].sid).fetch)
        assert (one.verification_sid, one.channel_data["to"]) == (started.sid, "+1********41")
        fetched_v = await call(verify.services(service.sid).verifications(started.sid).fetch)
        assert [a["attempt_sid"] for a in fetched_v.send_code_attempts] == [mine[0].sid]
        summary = await call(
            verify.verification_attempts_summary().fetch, verify_service_sid=service.sid
        )
        assert summary.total_attempts == len(sent)
        assert summary.total_converted == 2  # started and approve
        assert summary.total_unconverted == len(sent) - 2
        unknown_attempt = await rest_error(attempts("VL" + "f" * 32).fetch)
        assert unknown_attempt.code == 20404

    # Bad credentials: 20003, whether the key or the username is wrong.
    for username, password in (
        (DEFAULT_APPLICATION_ID, "otp_test_wrong"),
        ("app_someone_else", keys.test),
    ):
        other_client = twilio_client(service_url, username, password)
        refused = await rest_error(other_client.verify.v2.services(service.sid).fetch)
        assert (refused.status, refused.code) == (401, 20003)


async def test_openapi_lists_the_compat_routes_in_their_own_tag(http: httpx.AsyncClient) -> None:
    doc = (await http.get("/openapi.json")).json()
    compat = {path: item for path, item in doc["paths"].items() if path.startswith("/v2/")}
    assert len([op for item in compat.values() for op in item]) == 12
    for item in compat.values():
        for operation in item.values():
            assert operation["tags"] == ["twilio-verify-v2"]
            assert operation["security"] == [{"TwilioBasic": []}]
            error = operation["responses"]["401"]["content"]
            assert error == {
                "application/json": {"schema": {"$ref": "#/components/schemas/TwilioError"}}
            }
    check = compat["/v2/Services/{service_sid}/VerificationCheck"]["post"]
    form = check["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"Code", "To", "VerificationSid"} <= set(form["properties"])
    assert form["additionalProperties"] is False
    assert doc["components"]["securitySchemes"]["TwilioBasic"]["scheme"] == "basic"


async def test_errors_are_twilio_json_for_raw_requests(http: httpx.AsyncClient, keys: Keys) -> None:
    auth = (DEFAULT_APPLICATION_ID, keys.test)
    unknown_param = await http.post(
        "/v2/Services", data={"FriendlyName": "x", "Bogus": "1"}, auth=auth
    )
    assert unknown_param.status_code == 400
    assert unknown_param.headers["content-type"] == "application/json"
    assert unknown_param.json() == {
        "code": 60200,
        "message": unknown_param.json()["message"],
        "more_info": "https://www.twilio.com/docs/errors/60200",
        "status": 400,
    }
    assert "Bogus" in unknown_param.json()["message"]
    bearer = await http.get("/v2/Services", headers=keys.test_headers)
    assert (bearer.status_code, bearer.json()["code"]) == (401, 20003)
    assert bearer.headers["www-authenticate"].startswith("Basic")
    missing = await http.get("/v2/Services/VA" + "0" * 32, auth=auth)
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)
    assert missing.headers["cache-control"] == "no-store"


def test_verification_sids_and_ids_are_one_bijection() -> None:
    for _ in range(50):
        vid = new_verification_id()
        sid = verification_sid(vid)
        assert sid is not None and len(sid) == 34 and sid.startswith("VE")
        assert verification_id_of(sid) == vid
    assert verification_sid("ver_" + "z" * 26) is None  # not the encoding of 16 bytes
    assert verification_id_of("VE" + "A" * 32) is None


async def test_fraud_controls_and_limits_answer_twilio_codes(
    service_url: str, store: Store
) -> None:
    """An application's own key (username: the key's id) and its fraud policy, as Twilio codes."""
    risk = RiskSettings(
        allowed_countries={"*": ["US", "GB"]},
        blocked_number_types=["FIXED_LINE"],
        blocked_prefixes=["+1202555"],
        per_destination=Rate(limit=1, window_s=600),
    )
    application = await create_application(store, name="Twilio fraud", risk=risk)
    key = await create_api_key(store, application_id=application.id, mode=Mode.TEST)
    verify = twilio_client(service_url, key.api_key.id, key.key).verify.v2
    service = await call(verify.services.create, friendly_name="Guarded")
    create = verify.services(service.sid).verifications.create

    geo = await rest_error(create, to="+33612345678", channel="sms")
    assert (geo.status, geo.code) == (403, 60605)
    prefix = await rest_error(create, to="+12025550123", channel="sms")
    assert (prefix.status, prefix.code) == (403, 60410)
    landline = await rest_error(create, to="+442079460123", channel="sms")
    assert (landline.status, landline.code) == (400, 60205)

    first = await call(create, to="+14155550161", channel="sms")
    await call(verify.services(service.sid).verifications(first.sid).update, status="canceled")
    limited = await rest_error(create, to="+14155550161", channel="sms")
    assert (limited.status, limited.code) == (429, 60203)

    # The application id works as the username too; another application's id does not.
    by_app = twilio_client(service_url, application.id, key.key).verify.v2
    assert (await call(by_app.services(service.sid).fetch)).sid == service.sid
    other = twilio_client(service_url, DEFAULT_APPLICATION_ID, key.key).verify.v2
    assert (await rest_error(other.services(service.sid).fetch)).code == 20003


def test_every_problem_maps_to_a_twilio_error() -> None:
    cases = [
        (VerificationFinished("expired", "ttl"), 404, 20404),
        (VerificationFinished("max_attempts_reached"), 429, 60202),
        (RiskPolicyRefused("failed_checks_exceeded"), 429, 60202),
        (MaxSendsReached(), 429, 60203),
        (ServiceUnavailable(), 503, 20503),
        (UpstreamError("boom"), 502, 20500),
    ]
    for problem, status, code in cases:
        error = twilio_error_of(problem)
        assert (error.status, error.code) == (status, code), problem
        assert error.body()["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    finished = twilio_error_of(VerificationFinished("expired", "ttl")).body()
    assert (finished["otp_status"], finished["otp_reason"]) == ("expired", "ttl")
