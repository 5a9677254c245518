"""An application's alert rules and its alerts (the worker's monitor raises and resolves
them; see activities.alerts). A rules replacement is validated whole: a bad field is one
422 problem and nothing changes."""

from __future__ import annotations

from api.problems import AlertNotFound
from api.schemas.alerts import AlertList, AlertPublic
from api.services.applications import require_application
from otp.alerts.rules import AlertRules
from otp.domain import Mode
from otp.store import Store
from otp.store import alerts as db


async def get_rules(store: Store, *, application_id: str) -> AlertRules:
    app = await require_application(store, application_id)
    return await db.get_rules(store, application_id=app.id)


async def put_rules(store: Store, *, application_id: str, rules: AlertRules) -> AlertRules:
    """Replace the rules; the next evaluation (within a minute) applies them."""
    app = await require_application(store, application_id)
    return await db.put_rules(store, application_id=app.id, rules=rules)


async def list_alerts(
    store: Store,
    *,
    application_id: str,
    mode: Mode | None,
    state: str | None,
    limit: int,
) -> AlertList:
    app = await require_application(store, application_id)
    rows = await db.list_alerts(
        store,
        application_id=app.id,
        mode=mode.value if mode else None,
        state=state,
        limit=limit,
    )
    return AlertList(alerts=[AlertPublic.of(r) for r in rows])


async def get_alert(store: Store, *, application_id: str, alert_id: str) -> AlertPublic:
    app = await require_application(store, application_id)
    row = await db.get_alert(store, alert_id=alert_id, application_id=app.id)
    if row is None:
        raise AlertNotFound()
    return AlertPublic.of(row)
