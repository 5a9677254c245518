"""An application's own prices through the admin API: the effective table, set, quote,
remove; bad input is one problem and changes nothing; a delivery is costed at the
application's price."""

from __future__ import annotations

from pathlib import Path

import httpx
import phonenumbers
import pytest
from pydantic import SecretStr

from otp.settings import Secrets, Settings
from otp.store import Store
from otp.store.applications import create_application
from otp.store.prices import list_overrides
from tests.api.test_templates import problem
from tests.helpers.api import Keys, make_settings

ADMIN_TOKEN = "admin-token-for-the-price-tests-0123456"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
US = "+14155550123"
# A country the built-in table does not list.
_EXAMPLE = phonenumbers.example_number_for_type("TO", phonenumbers.PhoneNumberType.MOBILE)
assert _EXAMPLE is not None
TONGA = phonenumbers.format_number(_EXAMPLE, phonenumbers.PhoneNumberFormat.E164)


@pytest.fixture
def api_settings(data_dir: Path, task_queue: str, secrets: Secrets, keys: Keys) -> Settings:
    return make_settings(data_dir, task_queue, secrets, keys).model_copy(
        update={"admin_token": SecretStr(ADMIN_TOKEN)}
    )


def base(app_id: str) -> str:
    return f"/v1/admin/applications/{app_id}/prices"


async def test_set_quote_list_and_remove_a_price(http: httpx.AsyncClient, store: Store) -> None:
    app = await create_application(store, name="Priced")
    quote: dict[str, str | int] = {"to": US, "channel": "sms", "provider": "twilio", "segments": 2}
    before = (await http.get(f"{base(app.id)}/quote", params=quote, headers=ADMIN)).json()
    assert (before["source"], before["unit_price"], before["estimate"]) == (
        "table",
        "0.0083",
        "0.0166",
    )
    assert before["flagged"] is False and US not in str(before)

    saved = await http.put(
        f"{base(app.id)}/twilio/sms/US",
        json={"price": "0.0050", "currency": "USD", "note": "contract 2026"},
        headers=ADMIN,
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["origin"] == "override" and saved.json()["price"] == "0.005"
    after = (await http.get(f"{base(app.id)}/quote", params=quote, headers=ADMIN)).json()
    assert (after["source"], after["estimate"]) == ("override", "0.01")

    listed = (
        await http.get(base(app.id), params={"provider": "twilio", "country": "US"}, headers=ADMIN)
    ).json()
    assert listed["currency"] == "USD"
    origins = {(p["channel"], p["origin"], p["overridden"]) for p in listed["prices"]}
    assert ("sms", "table", True) in origins and ("sms", "override", False) in origins

    # Replacing keeps one row per route.
    again = await http.put(
        f"{base(app.id)}/twilio/sms/US", json={"price": "0.006", "currency": "USD"}, headers=ADMIN
    )
    assert again.status_code == 200
    assert [o.price_micros for o in await list_overrides(store, application_id=app.id)] == [6_000]

    removed = await http.delete(f"{base(app.id)}/twilio/sms/US", headers=ADMIN)
    assert removed.status_code == 204
    back = (await http.get(f"{base(app.id)}/quote", params=quote, headers=ADMIN)).json()
    assert back["source"] == "table"
    problem(
        await http.delete(f"{base(app.id)}/twilio/sms/US", headers=ADMIN), 404, "price-not-found"
    )


async def test_an_unknown_country_is_quoted_at_the_default_and_flagged(
    http: httpx.AsyncClient, store: Store
) -> None:
    app = await create_application(store, name="Far")
    found = await http.get(
        f"{base(app.id)}/quote",
        params={"to": TONGA, "channel": "sms", "provider": "twilio"},
        headers=ADMIN,
    )
    assert found.status_code == 200, found.text
    assert found.json()["source"] == "default" and found.json()["flagged"] is True


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("twilio/sms/US", {"price": "0.01", "currency": "EUR"}, "#/currency"),
        ("twilio/sms/US", {"price": "-0.01", "currency": "USD"}, None),
        ("twilio/sms/US", {"price": "0.01", "currency": "USD", "unit": "hour"}, "#/unit"),
        ("twilio/sms/XX", {"price": "0.01", "currency": "USD"}, None),
        ("twilio/sms/US", {"price": "0.01", "currency": "USD", "extra": 1}, None),
    ],
)
async def test_bad_prices_are_one_problem_and_change_nothing(
    http: httpx.AsyncClient, store: Store, path: str, body: dict[str, object], where: str | None
) -> None:
    app = await create_application(store, name="Strict")
    found = problem(
        await http.put(f"{base(app.id)}/{path}", json=body, headers=ADMIN), 422, "invalid-request"
    )
    if where is not None:
        assert where in str(found["errors"])
    assert await list_overrides(store, application_id=app.id) == []


async def test_prices_need_the_admin_token_and_an_existing_application(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.get(base("default"))).status_code == 401
    problem(await http.get(base("app_missing"), headers=ADMIN), 404, "application-not-found")
