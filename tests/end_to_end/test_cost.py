"""What verifications cost, end to end through the Twilio fake.

API (uvicorn) -> Temporal dev server -> worker (production adapters) -> TwilioFake: each
send is quoted from the built-in price table (US SMS 0.0083 per segment, US voice 0.014
per minute), a Twilio price in a status callback replaces the estimate, a fetch of the
message brings a price its receipt did not, and the spend caps and the cost cap refuse
sends before any provider call.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from activities.alerts import AlertActivities
from activities.provider_prices import ProviderPriceActivities
from otp.cost.caps import CapName, SpendCaps, budget_key
from otp.cost.price_table import default_table
from otp.domain import Channel, FetchPricesInput, Mode
from otp.messages.sms import segment_count
from otp.risk.limits.store import StoreLimiter
from otp.risk.policy import RiskSettings
from otp.store import Store
from otp.store.alerts import open_alerts
from otp.store.applications import ensure_default_application, get_application, update_application
from otp.store.costs import costs_of
from providers.registry import build_providers
from tests.end_to_end.conftest import StartStack
from tests.end_to_end.test_routing import send_reasons

US = ["+14155550101", "+14155550102", "+14155550103", "+14155550104"]
SMS_US = default_table().quote("twilio", Channel.SMS, country="US").unit_price_micros
VOICE_US = default_table().quote("twilio", Channel.VOICE, country="US").unit_price_micros


def micros(amount: str) -> int:
    return int(Decimal(amount) * 1_000_000)


async def with_risk(store: Store, risk: RiskSettings) -> None:
    await ensure_default_application(store)
    await update_application(store, application_id="default", risk=risk)


async def spent_today(store: Store) -> int:
    key = budget_key("default", Mode.LIVE, CapName.DAILY, datetime.now(UTC))
    return await StoreLimiter(store).get(key)


async def test_a_fallback_is_costed_from_the_table_then_by_twilios_price(
    start_stack: StartStack, store: Store
) -> None:
    assert (SMS_US, VOICE_US) == (8_300, 14_000)
    stack = await start_stack()
    api, twilio = stack.api, stack.twilio
    vid = await stack.create({"to": US[0], "channels": [{"channel": "sms"}, {"channel": "voice"}]})
    sms = await twilio.wait_for_sent("Messages", 1)
    segments = segment_count(sms.form["Body"])
    moved = await api.post(f"/v1/verifications/{vid}/next-channel")
    assert moved.status_code == 200, moved.text
    call = await twilio.wait_for_sent("Calls", 1)

    body = (await api.get(f"/v1/verifications/{vid}")).json()
    first, second = body["deliveries"]
    assert first["cost"] == {
        "amount": str(Decimal(SMS_US * segments) / 1_000_000),
        "currency": "USD",
        "estimate": str(Decimal(SMS_US * segments) / 1_000_000),
        "reported": None,
        "reported_currency": None,
        "source": "table",
        "units": segments,
        "unit": "segment",
    }
    assert second["cost"]["estimate"] == "0.014" and second["cost"]["unit"] == "minute"
    assert micros(body["cost"]) == SMS_US * segments + VOICE_US and body["currency"] == "USD"
    # The spend caps were charged the estimates: the create's SMS, the worker's call.
    assert await spent_today(store) == SMS_US * segments + VOICE_US

    # Twilio prices the call in its completed callback: the price replaces the estimate.
    twilio.prices[call.id] = ("-0.0150", "USD")
    answered = await twilio.status_callback(call, "completed")
    assert answered.status_code in (200, 204), answered.body
    await stack.wait_state(
        vid,
        lambda s: (
            s.deliveries[1].cost is not None and s.deliveries[1].cost.reported_micros == 15_000
        ),
    )
    body = (await api.get(f"/v1/verifications/{vid}")).json()
    priced = body["deliveries"][1]["cost"]
    assert priced["reported"] == "0.015" and priced["amount"] == "0.015"
    assert priced["estimate"] == "0.014"  # both are kept
    assert micros(body["cost"]) == SMS_US * segments + 15_000
    rows = {r.channel: r for r in await costs_of(store, verification_id=vid)}
    assert rows["voice"].reported_micros == 15_000 and rows["voice"].estimate_micros == VOICE_US
    assert rows["sms"].reported_micros is None
    # The price above the estimate counts toward the caps too.
    assert await spent_today(store) == SMS_US * segments + 15_000

    # The SMS receipt brought no price: a fetch of the message does.
    twilio.prices[sms.id] = ("-0.00790", "USD")
    prices = ProviderPriceActivities(
        store,
        stack.settings,
        limiter=StoreLimiter(store),
        providers_by_name=build_providers(stack.settings, None),
    )
    fetched = await prices.fetch_provider_prices(FetchPricesInput(min_age_s=0))
    assert (fetched.asked, fetched.priced) == (1, 1)
    rows = {r.channel: r for r in await costs_of(store, verification_id=vid)}
    assert rows["sms"].reported_micros == 7_900
    body = (await api.get(f"/v1/verifications/{vid}")).json()
    assert micros(body["cost"]) == 7_900 + 15_000
    # A lower price refunds nothing: the caps keep the estimate.
    assert await spent_today(store) == SMS_US * segments + 15_000
    again = await prices.fetch_provider_prices(FetchPricesInput(min_age_s=0))
    assert again.asked == 0  # every delivery has its price


async def test_a_daily_cap_refuses_the_next_send_with_nothing_sent(
    start_stack: StartStack, store: Store
) -> None:
    await with_risk(store, RiskSettings(spend_caps=SpendCaps(daily="0.02")))
    stack = await start_stack()
    api, twilio = stack.api, stack.twilio

    # 0.0083 for the SMS; the call's 0.014 would make 0.0223 > 0.02: refused in the worker.
    fallback = await stack.create(
        {"to": US[0], "channels": [{"channel": "sms"}, {"channel": "voice"}]}
    )
    await twilio.wait_for_sent("Messages", 1)
    moved = await api.post(f"/v1/verifications/{fallback}/next-channel")
    assert moved.status_code == 200, moved.text
    assert moved.json()["delivery"]["status"] == "failed"
    assert moved.json()["delivery"]["error_type"] == "Blocked"
    state, _ = await stack.wait_state(fallback, lambda s: s.status.value == "blocked")
    assert state.reason is not None and state.reason.startswith("spend_daily reached")
    assert twilio.sent("Calls") == []

    # 0.0166: the second SMS fits.
    await stack.create({"to": US[1], "channels": [{"channel": "sms"}]})
    await twilio.wait_for_sent("Messages", 2)
    spent = await spent_today(store)
    assert spent == 2 * SMS_US

    # 0.0249 would pass the cap: 429, no verification, no message, nothing charged.
    refused = await api.post(
        "/v1/verifications", json={"to": US[2], "channels": [{"channel": "sms"}]}
    )
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "urn:otp:problem:spend-cap-reached"
    assert (problem["cap"], problem["currency"]) == ("spend_daily", "USD")
    assert (problem["cap_amount"], problem["spent"], problem["cost"]) == (
        "0.02",
        "0.0166",
        "0.0083",
    )
    assert US[2] not in refused.text
    midnight = 86_400 - datetime.now(UTC).timestamp() % 86_400
    assert abs(int(refused.headers["Retry-After"]) - midnight) <= 5
    assert len(twilio.sent("Messages")) == 2
    assert await spent_today(store) == spent
    listed = (await api.get("/v1/verifications", params={"limit": 10})).json()
    assert len(listed["data"]) == 2

    # The refusals raise the spend alert at 100 % (0.0166 of 0.02 is 83 %: the 80 % one too).
    alerts = AlertActivities(store, StoreLimiter(store), stack.settings)
    application = await get_application(store, application_id="default")
    assert application is not None
    assert await alerts.evaluate_one(application, Mode.LIVE) == (2, 0)
    firing = await open_alerts(store, application_id="default", mode="live")
    assert sorted(a.scope for a in firing) == ["spend_daily@100", "spend_daily@80"]
    full = next(a for a in firing if a.scope == "spend_daily@100")
    assert full.evidence["refused"] == 2 and full.evidence["cap_micros"] == 20_000


async def test_the_cost_cap_skips_a_step_that_would_pass_it(
    start_stack: StartStack, store: Store
) -> None:
    stack = await start_stack()
    api, twilio = stack.api, stack.twilio
    vid = await stack.create(
        {
            "to": US[3],
            "channels": [{"channel": "sms"}, {"channel": "voice"}],
            "max_cost": "0.02",
        }
    )
    await twilio.wait_for_sent("Messages", 1)
    moved = await api.post(f"/v1/verifications/{vid}/next-channel")
    assert moved.status_code == 200, moved.text
    assert moved.json()["delivery"]["error_type"] == "CostCapReached"
    assert twilio.sent("Calls") == []
    reasons = await send_reasons(store, vid)
    assert reasons  # the sends were logged
    body = (await api.get(f"/v1/verifications/{vid}")).json()
    assert body["status"] == "pending"  # the SMS's code still works
    assert micros(body["cost"]) <= micros("0.02")
    # Why the call was skipped is in the event log, with the amounts.
    events = (await api.get(f"/v1/verifications/{vid}/events")).json()["data"]
    skipped = [e for e in events if e["type"] == "failed" and e.get("channel") == "voice"]
    assert skipped and "cost cap" in (skipped[0].get("reason") or "")
    assert "0.014" in skipped[0]["reason"] and "0.02 USD" in skipped[0]["reason"]

    bad = await api.post("/v1/verifications", json={"to": US[3], "max_cost": "-1"})
    assert bad.status_code == 422
