"""Twilio Verify v2 on top of the verification services: translation only, no second engine.

A Twilio `Service` (`VA...`) is configuration of the caller's application (store:
`otp.store.twilio_services`); a `Verification` is one of this service's verifications,
started, checked, read and canceled through `api.services.verifications` (the same gates,
limits, workflows, webhooks and records as `/v1`). Its sid is `VE` + the hex of the
16 random bytes behind its `ver_` id, so no mapping is stored; it carries the service's
sid as its `client_ref`. Twilio's rule of one pending verification per destination and
service: a second create resends the same code and answers the same sid.

`Attempts` (`VL...`) are the `send_attempted` events of the event log of those
verifications (the sid is the row's id in hex); `Attempts/Summary` counts them and those
whose verification was approved.

Errors are Twilio's (`code`, `message`, `more_info`, `status`): `twilio_error_of` maps
every problem of the API onto one, adding `otp_status` / `otp_reason` where a
verification has ended (Twilio answers a bare 20404 there).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from temporalio.exceptions import TemporalError

from api.problems import (
    ApiProblem,
    ChannelNotAllowed,
    InvalidRequest,
    MaxSendsReached,
    RateLimited,
    ResendCooldown,
    RiskPolicyRefused,
    SpendCapReached,
    Unauthorized,
    VerificationAborted,
    VerificationFinished,
    VerificationNotFound,
)
from api.schemas.twilio_verify import (
    SendCodeAttempt,
    ServiceCreateForm,
    ServiceUpdateForm,
    TwilioAttempt,
    TwilioAttemptsSummary,
    TwilioService,
    TwilioVerification,
    TwilioVerificationCheck,
    VerificationCheckForm,
    VerificationCreateForm,
)
from api.schemas.verifications import ChannelStepCreate, CheckRequest, VerificationCreate
from api.services.verifications import Verifications
from api.temporal_errors import problem_from_temporal
from otp.domain import WORKFLOW_ID_PREFIX, Channel, Status, VerificationState
from otp.domain.destinations import InvalidDestinationError, looks_like_email, parse_destination
from otp.risk.policy import RefusalReason
from otp.security.codes import derive_code
from otp.store import twilio_services as store
from otp.store.events import destination_hash
from otp.store.tables import TwilioVerifyService

logger = logging.getLogger("otp.api")

VERIFICATION_SID_PREFIX = "VE"
MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
_CHANNELS = {
    "sms": Channel.SMS,
    "whatsapp": Channel.WHATSAPP,
    "call": Channel.VOICE,
    "email": Channel.EMAIL,
}
_TWILIO_CHANNEL = {channel: name for name, channel in _CHANNELS.items()}
# The Twilio parameter behind each field of the /v1 create it becomes.
_CREATE_PARAMETERS = {
    "to": "To",
    "locale": "Locale",
    "brand": "CustomFriendlyName",
    "app_hash": "AppHash",
    "user_ip": "DeviceIp",
}
# Statuses without a Twilio twin.
_TWILIO_STATUS = {Status.UNDELIVERABLE: "failed", Status.BLOCKED: "failed"}


# ------------------------------------------------------------------------ sids
def verification_sid(verification_id: str) -> str | None:
    """`ver_<base32 of 16 bytes>` -> `VE<hex of the same bytes>`; None if not such an id."""
    encoded = verification_id.removeprefix(WORKFLOW_ID_PREFIX).upper()
    if not verification_id.startswith(WORKFLOW_ID_PREFIX) or len(encoded) != 26:
        return None
    try:
        raw = base64.b32decode(encoded + "=" * 6)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16 or base64.b32encode(raw).decode().rstrip("=") != encoded:
        return None  # not the canonical encoding of 16 bytes (e.g. an idempotent id)
    return VERIFICATION_SID_PREFIX + raw.hex()


def verification_id_of(sid: str) -> str | None:
    """The inverse of `verification_sid`."""
    hex_part = sid.removeprefix(VERIFICATION_SID_PREFIX)
    if not sid.startswith(VERIFICATION_SID_PREFIX) or len(hex_part) != 32:
        return None
    try:
        raw = bytes.fromhex(hex_part)
    except ValueError:
        return None
    if raw.hex() != hex_part:
        return None  # upper-case hex: not a sid this service answered
    return WORKFLOW_ID_PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()


def account_sid(application_id: str) -> str:
    """The Twilio-shaped account sid of an application (`AC` + 32 hex, stable)."""
    return "AC" + hashlib.sha256(application_id.encode()).hexdigest()[:32]


ATTEMPT_SID_PREFIX = "VL"


def attempt_sid(event_id: int) -> str:
    """`VL` + the event log row's id in 32 hex digits (so the sid gives the row back)."""
    return ATTEMPT_SID_PREFIX + f"{event_id:032x}"


def attempt_event_id(sid: str) -> int | None:
    hex_part = sid.removeprefix(ATTEMPT_SID_PREFIX)
    if not sid.startswith(ATTEMPT_SID_PREFIX) or len(hex_part) != 32:
        return None
    try:
        value = int(hex_part, 16)
    except ValueError:
        return None
    return value if f"{value:032x}" == hex_part and 0 < value < 2**63 else None


# ---------------------------------------------------------------------- errors
class TwilioApiError(Exception):
    """An error answered as Twilio's JSON body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: str | None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
            **self.extra,
        }


def invalid_parameter(name: str, why: str = "") -> TwilioApiError:
    return TwilioApiError(400, 60200, f"Invalid parameter `{name}`" + (f": {why}" if why else ""))


def not_found(what: str) -> TwilioApiError:
    return TwilioApiError(404, 20404, f"The requested resource {what} was not found")


def from_validation(errors: Sequence[Mapping[str, Any]]) -> TwilioApiError:
    """A refused form (never echoing the value): Twilio's 60200 naming the parameter."""
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ()) if str(part) not in ("body", "query")]
    return invalid_parameter(".".join(loc) or "body", str(first.get("msg", "invalid value")))


_RISK_CODES = {
    RefusalReason.COUNTRY_NOT_ALLOWED.value: (403, 60605, "Geo permission: country refused"),
    RefusalReason.PREFIX_BLOCKED.value: (403, 60410, "Prefix blocked by fraud controls"),
    RefusalReason.SCOPE_BLOCKED.value: (403, 60410, "Destination blocked by fraud controls"),
    RefusalReason.NUMBER_TYPE_BLOCKED.value: (
        400,
        60205,
        "SMS is not supported by landline phone number",
    ),
    RefusalReason.FAILED_CHECKS_EXCEEDED.value: (429, 60202, "Max check attempts reached"),
}


def twilio_error_of(problem: ApiProblem) -> TwilioApiError:
    """The Twilio error for a problem of the API."""
    ext = problem.extensions
    if isinstance(problem, Unauthorized):
        return TwilioApiError(
            401, 20003, "Authenticate", headers={"WWW-Authenticate": 'Basic realm="Twilio API"'}
        )
    if isinstance(problem, VerificationFinished):
        status = str(ext.get("status_of_verification", "finished"))
        reason = ext.get("reason")
        if status == Status.MAX_ATTEMPTS_REACHED.value:
            return TwilioApiError(
                429, 60202, "Max check attempts reached", otp_status=status, otp_reason=reason
            )
        return TwilioApiError(
            404,
            20404,
            f"The requested resource was not found: the verification is {status}",
            otp_status=status,
            otp_reason=reason,
        )
    if isinstance(problem, VerificationAborted):
        return TwilioApiError(
            404,
            20404,
            "The requested resource was not found: the verification was stopped",
            otp_status=str(ext.get("execution_status")),
        )
    if isinstance(problem, VerificationNotFound):
        return not_found("Verification")
    if isinstance(problem, RiskPolicyRefused):
        http_status, code, message = _RISK_CODES.get(
            str(ext.get("reason")), (403, 60410, "Refused by fraud controls")
        )
        return TwilioApiError(http_status, code, message, otp_reason=str(ext.get("reason")))
    if isinstance(problem, (RateLimited, MaxSendsReached, ResendCooldown)):
        return TwilioApiError(
            429,
            60203,
            "Max send attempts reached",
            headers=problem.headers,
            otp_reason=problem.slug,
        )
    if isinstance(problem, SpendCapReached):
        # Twilio's own "Too Many Requests"; the cap and its amounts in the OTP fields.
        return TwilioApiError(
            429,
            20429,
            problem.detail or "Spend cap reached",
            headers=problem.headers,
            otp_reason=str(ext.get("cap") or problem.slug),
        )
    if isinstance(problem, ChannelNotAllowed):
        return TwilioApiError(400, 60223, problem.detail or "Delivery channel disabled")
    if isinstance(problem, InvalidRequest):
        errors = ext.get("errors") or []
        where = ", ".join(str(e.get("pointer", e.get("parameter", ""))) for e in errors)
        details = "; ".join(str(e.get("detail", "")) for e in errors)
        return TwilioApiError(
            400, 60200, f"Invalid parameter{f' ({where})' if where else ''}: {details or 'invalid'}"
        )
    if problem.status == 503:
        return TwilioApiError(503, 20503, "Service unavailable", headers=problem.headers)
    if problem.status >= 500:
        return TwilioApiError(problem.status, 20500, problem.detail or problem.title)
    return TwilioApiError(problem.status, 20000 + problem.status, problem.detail or problem.title)


# ------------------------------------------------------------------ resources
@dataclass(frozen=True)
class Urls:
    """Absolute URLs of the compat resources (Twilio answers absolute `url`s)."""

    base: str  # e.g. http://127.0.0.1:8000 (no trailing slash)

    def services(self) -> str:
        return f"{self.base}/v2/Services"

    def service(self, sid: str) -> str:
        return f"{self.services()}/{sid}"

    def verification(self, service_sid: str, sid: str) -> str:
        return f"{self.service(service_sid)}/Verifications/{sid}"

    def attempts(self) -> str:
        return f"{self.base}/v2/Attempts"


def service_out(row: TwilioVerifyService, urls: Urls) -> TwilioService:
    options = row.options
    url = urls.service(row.sid)

    def group(prefix: str) -> dict[str, Any]:
        return {
            _snake(name.split(".", 1)[1]): value
            for name, value in options.items()
            if name.startswith(prefix + ".")
        }

    return TwilioService(
        sid=row.sid,
        account_sid=account_sid(row.application_id),
        friendly_name=row.friendly_name,
        code_length=row.code_length,
        lookup_enabled=row.lookup_enabled,
        psd2_enabled=row.psd2_enabled,
        skip_sms_to_landlines=row.skip_sms_to_landlines,
        dtmf_input_required=row.dtmf_input_required,
        tts_name=row.tts_name,
        do_not_share_warning_enabled=row.do_not_share_warning_enabled,
        custom_code_enabled=row.custom_code_enabled,
        push=group("Push"),
        totp=group("Totp"),
        default_template_sid=row.default_template_sid,
        whatsapp=group("Whatsapp"),
        verify_event_subscription_enabled=row.verify_event_subscription_enabled,
        date_created=row.created_at,
        date_updated=row.updated_at,
        url=url,
        links={
            "verifications": f"{url}/Verifications",
            "verification_checks": f"{url}/VerificationCheck",
        },
    )


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def twilio_status(status: Status) -> str:
    return _TWILIO_STATUS.get(status, status.value)


def _channel_name(channel: str | None) -> str:
    try:
        return _TWILIO_CHANNEL[Channel(channel or "")]
    except ValueError:
        return channel or ""


def attempt_out(row: store.AttemptRow, application_id: str, urls: Urls) -> TwilioAttempt:
    sid = attempt_sid(row.event_id)
    return TwilioAttempt(
        sid=sid,
        account_sid=account_sid(application_id),
        service_sid=row.service_sid,
        verification_sid=verification_sid(row.verification_id) or "",
        date_created=row.occurred_at,
        date_updated=row.occurred_at,
        conversion_status="converted" if row.converted else "unconverted",
        channel=_channel_name(row.channel),
        channel_data={"to": row.to_masked},
        url=f"{urls.attempts()}/{sid}",
    )


def verification_out(
    verification_id: str,
    state: VerificationState,
    service_sid: str,
    urls: Urls,
    attempts: list[store.AttemptRow],
) -> TwilioVerification:
    sid = verification_sid(verification_id) or ""
    step = state.channels[min(state.current_step, len(state.channels) - 1)]
    updated = max(
        [state.created_at, *(d.updated_at for d in state.deliveries)]
        + ([state.finished_at] if state.finished_at else [])
    )
    return TwilioVerification(
        sid=sid,
        service_sid=service_sid,
        account_sid=account_sid(state.application_id),
        to=state.channels[0].to,
        channel=_TWILIO_CHANNEL[step.channel],
        status=twilio_status(state.status),
        valid=state.status is Status.APPROVED,
        send_code_attempts=[
            SendCodeAttempt(
                attempt_sid=attempt_sid(row.event_id),
                channel=_channel_name(row.channel),
                time=row.occurred_at,
            )
            for row in reversed(attempts)
        ],
        date_created=state.created_at,
        date_updated=updated,
        url=urls.verification(service_sid, sid),
        otp_verification_id=verification_id,
        otp_reason=state.reason,
    )


@dataclass(frozen=True)
class AttemptQuery:
    """The filters of `GET /v2/Attempts` and `/v2/Attempts/Summary` (Twilio's names)."""

    created_after: datetime | None = None
    created_before: datetime | None = None
    to: str | None = None
    country: str | None = None
    channel: str | None = None
    service_sid: str | None = None
    verification_sid: str | None = None
    status: str | None = None


def _json_object(name: str, raw: str) -> dict[str, Any]:
    """A JSON object parameter (Twilio's `RateLimits`, `ChannelConfiguration`)."""
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid_parameter(name, "not JSON") from None
    if not isinstance(value, dict):
        raise invalid_parameter(name, "must be a JSON object")
    return value


# ------------------------------------------------------------------ operations
@dataclass(frozen=True)
class TwilioVerify:
    """The Verify v2 operations of one caller, over its `Verifications`."""

    verifications: Verifications
    urls: Urls

    @property
    def _app(self) -> str:
        return self.verifications.principal.application_id

    # ---------------------------------------------------------------- services
    async def create_service(self, form: ServiceCreateForm) -> TwilioService:
        fields = form.columns()
        fields.setdefault("code_length", 6)
        row = await store.create_service(
            self.verifications.store, application_id=self._app, fields=fields
        )
        logger.info("twilio verify service created", extra={"service_sid": row.sid})
        return service_out(row, self.urls)

    async def _service(self, sid: str) -> TwilioVerifyService:
        row = await store.get_service(self.verifications.store, application_id=self._app, sid=sid)
        if row is None:
            raise not_found(f"/v2/Services/{sid}")
        return row

    async def fetch_service(self, sid: str) -> TwilioService:
        return service_out(await self._service(sid), self.urls)

    async def list_services(self, *, page: int, page_size: int) -> tuple[list[TwilioService], bool]:
        """One page of services, and whether another page follows."""
        rows = await store.list_services(
            self.verifications.store,
            application_id=self._app,
            offset=page * page_size,
            limit=page_size + 1,
        )
        return [service_out(r, self.urls) for r in rows[:page_size]], len(rows) > page_size

    async def update_service(self, sid: str, form: ServiceUpdateForm) -> TwilioService:
        row = await store.update_service(
            self.verifications.store, application_id=self._app, sid=sid, fields=form.columns()
        )
        if row is None:
            raise not_found(f"/v2/Services/{sid}")
        return service_out(row, self.urls)

    async def delete_service(self, sid: str) -> None:
        deleted = await store.delete_service(
            self.verifications.store, application_id=self._app, sid=sid
        )
        if not deleted:
            raise not_found(f"/v2/Services/{sid}")

    # ----------------------------------------------------------- verifications
    async def _latest(self, service_sid: str, to: str, channel: Channel) -> str | None:
        """The newest verification of this destination on this service, if any."""
        try:
            normalized = parse_destination(to, channel).value
        except InvalidDestinationError as exc:
            raise invalid_parameter("To", str(exc)) from None
        principal = self.verifications.principal
        return await store.latest_verification_id(
            self.verifications.store,
            application_id=principal.application_id,
            mode=principal.mode.value,
            service_sid=service_sid,
            destination_hash=destination_hash(self.verifications.secrets.code_secret, normalized),
        )

    async def _state_on(self, service_sid: str, verification_id: str) -> VerificationState:
        """The verification's state, if it was started through this service."""
        try:
            state = await self.verifications.read(verification_id)
        except VerificationNotFound:
            raise not_found("Verification") from None
        if state.client_ref != service_sid:
            raise not_found("Verification")
        return state

    async def create_verification(
        self, service_sid: str, form: VerificationCreateForm
    ) -> TwilioVerification:
        service = await self._service(service_sid)
        if form.custom_code is not None:
            raise invalid_parameter("CustomCode", "custom codes are not supported")
        for name, raw in (
            ("RateLimits", form.rate_limits),
            ("ChannelConfiguration", form.channel_configuration),
        ):
            if raw is not None:
                _json_object(name, raw)
        channel = _CHANNELS[form.channel]
        latest = await self._latest(service_sid, form.to, channel)
        if latest is not None:
            state = await self._state_on(service_sid, latest)
            if state.status is Status.PENDING:
                # Twilio's rule: the same pending verification, its code sent again (a
                # resend inside the cooldown answers it as it is).
                try:
                    await self.verifications.resend(latest)
                    state = await self.verifications.read(latest)
                except TemporalError as exc:
                    problem = problem_from_temporal(exc)
                    if not isinstance(problem, ResendCooldown):
                        raise problem from None
                return await self._out(latest, state, service_sid)
        fields: dict[str, Any] = {
            "to": form.to,
            "channels": [ChannelStepCreate(channel=channel)],
            "code_length": service.code_length,
            "brand": form.custom_friendly_name or service.friendly_name[:40],
            "client_ref": service_sid,
        }
        if form.locale is not None:
            fields["locale"] = form.locale
        if form.app_hash is not None:
            fields["app_hash"] = form.app_hash
        if form.device_ip is not None:
            fields["user_ip"] = form.device_ip
        try:
            body = VerificationCreate(**fields)
        except ValidationError as exc:
            errors = [
                {**e, "loc": [_CREATE_PARAMETERS.get(str(part), str(part)) for part in e["loc"]]}
                for e in exc.errors()
            ]
            raise from_validation(errors) from None
        created = await self.verifications.create(body, idempotency_key=None)
        state = await self.verifications.read(created.id)
        return await self._out(created.id, state, service_sid)

    def _attempts_where(self, **filters: Any) -> store.AttemptFilter:
        principal = self.verifications.principal
        return store.AttemptFilter(
            application_id=principal.application_id, mode=principal.mode.value, **filters
        )

    async def _out(
        self, verification_id: str, state: VerificationState, service_sid: str
    ) -> TwilioVerification:
        """The Twilio resource, its send attempts read from the event log."""
        attempts = await store.list_attempts(
            self.verifications.store,
            where=self._attempts_where(verification_id=verification_id),
            offset=0,
            limit=100,
        )
        return verification_out(verification_id, state, service_sid, self.urls, attempts)

    def _id_of(self, sid: str) -> str:
        verification_id = verification_id_of(sid)
        if verification_id is None:
            raise not_found("Verification")
        return verification_id

    async def fetch_verification(self, service_sid: str, sid: str) -> TwilioVerification:
        await self._service(service_sid)
        verification_id = self._id_of(sid)
        state = await self._state_on(service_sid, verification_id)
        return await self._out(verification_id, state, service_sid)

    async def update_verification(
        self, service_sid: str, sid: str, status: str
    ) -> TwilioVerification:
        await self._service(service_sid)
        verification_id = self._id_of(sid)
        state = await self._state_on(service_sid, verification_id)
        if status == "approved":
            await self._approve(verification_id)
        else:
            await self.verifications.cancel(verification_id)
        state = await self.verifications.read(verification_id)
        return await self._out(verification_id, state, service_sid)

    async def _approve(self, verification_id: str) -> None:
        """Approve out of band: a check with the verification's own code, re-derived here
        from its start (the code is never sent anywhere or kept), so attempts, events and
        webhooks are a check's."""
        started = await self.verifications.workflows.started_input(verification_id)
        if started.code_nonce is None:
            raise invalid_parameter("Status", "this verification cannot be approved out of band")
        code = derive_code(
            self.verifications.secrets.code_secret,
            verification_id,
            started.code_nonce,
            started.code_length,
            started.code_type,
        )
        await self.verifications.check(
            verification_id, CheckRequest(code=code), idempotency_key=None
        )

    async def check(self, service_sid: str, form: VerificationCheckForm) -> TwilioVerificationCheck:
        await self._service(service_sid)
        if form.verification_sid is not None:
            verification_id = self._id_of(form.verification_sid)
        elif form.to is not None:
            channel = Channel.EMAIL if looks_like_email(form.to) else Channel.SMS
            found = await self._latest(service_sid, form.to, channel)
            if found is None:
                raise not_found("VerificationCheck")
            verification_id = found
        else:
            raise invalid_parameter("To", "either To or VerificationSid is required")
        state = await self._state_on(service_sid, verification_id)
        try:
            code = CheckRequest(code=form.code)
        except ValidationError:
            raise invalid_parameter("Code") from None
        result = await self.verifications.check(verification_id, code, idempotency_key=None)
        out = verification_out(verification_id, state, service_sid, self.urls, [])
        return TwilioVerificationCheck(
            sid=out.sid,
            service_sid=service_sid,
            account_sid=out.account_sid,
            to=out.to,
            channel=out.channel,
            status=twilio_status(result.status),
            valid=result.valid,
            date_created=out.date_created,
            date_updated=out.date_updated,
            otp_attempts_remaining=result.attempts_remaining,
        )

    # ---------------------------------------------------------------- attempts
    async def _attempt_filter(self, query: AttemptQuery) -> store.AttemptFilter:
        filters: dict[str, Any] = {
            "created_after": query.created_after,
            "created_before": query.created_before,
            "country": query.country.upper() if query.country else None,
            "service_sid": query.service_sid,
        }
        if query.channel is not None:
            filters["channel"] = _CHANNELS[query.channel].value
        if query.verification_sid is not None:
            filters["verification_id"] = verification_id_of(query.verification_sid) or "-"
        if query.status is not None:
            filters["converted"] = query.status == "converted"
        if query.to is not None:
            channel = Channel.EMAIL if looks_like_email(query.to) else Channel.SMS
            try:
                normalized = parse_destination(query.to, channel).value
            except InvalidDestinationError as exc:
                raise invalid_parameter("ChannelData.To", str(exc)) from None
            filters["destination_hash"] = destination_hash(
                self.verifications.secrets.code_secret, normalized
            )
        return self._attempts_where(**filters)

    async def list_attempts(
        self, query: AttemptQuery, *, page: int, page_size: int
    ) -> tuple[list[TwilioAttempt], bool]:
        """A page of send attempts, newest first, and whether another page follows."""
        rows = await store.list_attempts(
            self.verifications.store,
            where=await self._attempt_filter(query),
            offset=page * page_size,
            limit=page_size + 1,
        )
        app = self.verifications.principal.application_id
        return [attempt_out(r, app, self.urls) for r in rows[:page_size]], len(rows) > page_size

    async def fetch_attempt(self, sid: str) -> TwilioAttempt:
        event_id = attempt_event_id(sid)
        rows = (
            []
            if event_id is None
            else await store.list_attempts(
                self.verifications.store,
                where=self._attempts_where(),
                offset=0,
                limit=1,
                event_id=event_id,
            )
        )
        if not rows:
            raise not_found(f"/v2/Attempts/{sid}")
        return attempt_out(rows[0], self.verifications.principal.application_id, self.urls)

    async def attempts_summary(self, query: AttemptQuery) -> TwilioAttemptsSummary:
        """Send attempts and how many of them converted (their verification was approved)."""
        total, converted = await store.attempts_summary(
            self.verifications.store, where=await self._attempt_filter(query)
        )
        rate = f"{(100 * converted / total) if total else 0:.2f}"
        return TwilioAttemptsSummary(
            total_attempts=total,
            total_converted=converted,
            total_unconverted=total - converted,
            conversion_rate_percentage=rate,
            url=f"{self.urls.attempts()}/Summary",
        )
