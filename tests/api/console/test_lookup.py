"""Support's lookup: by exact destination (keyed hash), id and filters; the timeline page;
no full destination in any support view."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from api.console.services import auth
from api.main import create_app
from otp.settings import Settings
from otp.store import Store, utcnow
from otp.store.applications import ensure_default_application
from otp.store.events import destination_hash
from otp.store.tables import VerificationDestination, VerificationEvent, VerificationRecord
from tests.conftest import TEST_SECRETS

PASSWORD = "lookup-password-12"
PHONE = "+14155550123"
VID = "ver_" + "k" * 26


@pytest.fixture
async def support(api_settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    await ensure_default_application(store)
    await auth.add_user(store, username="sam", role="support", password=PASSWORD)
    now = utcnow()
    masked = "+1********23"
    rows = [
        VerificationRecord(
            id=VID,
            application_id="default",
            mode="test",
            status="approved",
            first_channel="sms",
            channel="sms",
            country="US",
            to_masked=masked,
            client_ref="signup-7",
            created_at=now - timedelta(minutes=3),
            expires_at=now + timedelta(minutes=7),
            finished_at=now,
            sends=1,
            final=True,
        ),
        VerificationDestination(
            verification_id=VID,
            destination_hash=destination_hash(TEST_SECRETS.code_secret, PHONE),
            channel="sms",
        ),
        *[
            VerificationEvent(
                verification_id=VID,
                key=kind,
                application_id="default",
                mode="test",
                type=kind,
                occurred_at=now - timedelta(minutes=3 - n),
                channel="sms",
                provider="sandbox",
                to_masked=masked,
                step_index=0,
            )
            for n, kind in enumerate(["created", "delivery_sent", "check_failed", "approved"])
        ],
    ]
    async with store.write_guard(), store.session() as session:
        session.add_all(rows)
        await session.commit()
    app = create_app(api_settings, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console.test"
    ) as client:
        page = await client.get("/console/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        signed = await client.post(
            "/console/login",
            data={"username": "sam", "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert signed.status_code == 303
        yield client


def _ids(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return re.findall(r'<a href="/console/verifications/(ver_[a-z0-9]+)\?', page.text)


async def test_lookup_by_destination_id_and_filters(support: httpx.AsyncClient) -> None:
    assert _ids(
        await support.get("/console/verifications", params={"to": "+1 (415) 555-0123"})
    ) == [VID]
    assert _ids(await support.get("/console/verifications", params={"to": "+14155550199"})) == []
    assert _ids(await support.get("/console/verifications", params={"verification_id": VID})) == [
        VID
    ]
    assert _ids(await support.get("/console/verifications", params={"client_ref": "signup-7"})) == [
        VID
    ]
    found = await support.get(
        "/console/verifications", params={"status": "approved", "channel": "sms", "country": "us"}
    )
    assert _ids(found) == [VID]
    assert _ids(await support.get("/console/verifications", params={"status": "expired"})) == []
    assert _ids(await support.get("/console/verifications", params={"mode": "live"})) == []


async def test_the_timeline_page(support: httpx.AsyncClient) -> None:
    page = await support.get(f"/console/verifications/{VID}")
    assert page.status_code == 200
    kinds = re.findall(r"<td>(created|delivery_sent|check_failed|approved)</td>", page.text)
    assert kinds == ["created", "delivery_sent", "check_failed", "approved"]
    assert f"/namespaces/default/workflows/{VID}" in page.text
    assert (await support.get("/console/verifications/ver_unknown")).status_code == 404


async def test_no_full_destination_in_any_support_view(support: httpx.AsyncClient) -> None:
    pages = [
        await support.get("/console/"),
        await support.get("/console/dashboard"),
        await support.get("/console/verifications", params={"to": PHONE}),
        await support.get(f"/console/verifications/{VID}"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert "+1********23" in page.text or "verifications" not in str(page.url.path)
        for shown in (PHONE, "4155550123", "5550123", "otp_test_", "otp_live_"):
            assert shown not in page.text, (page.url, shown)
