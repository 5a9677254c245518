"""Custom message templates delivered end to end, in live mode over real sockets.

The application's templates (per channel and locale) are saved through the admin API; the
worker renders with them and sends through the Twilio fake (SMS) and the aiosmtpd server
(email), the Meta fake (WhatsApp): a template per locale, the application's default locale for a locale without
one, the built-in catalogue when neither has one for the channel. Each delivery records the version used.
"""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from typing import Any

import httpx
from pydantic import SecretStr

from tests.end_to_end.conftest import Stack, StartStack

ADMIN_TOKEN = "admin-token-for-the-e2e-templates-4821"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TEMPLATES = "/v1/admin/applications/default/templates"
PHONE = "+14155550177"
EMAIL = "jane@example.com"


async def save(api: httpx.AsyncClient, channel: str, locale: str, body: dict[str, Any]) -> int:
    response = await api.put(f"{TEMPLATES}/{channel}/{locale}", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    version: int = response.json()["version"]
    return version


async def template_version(stack: Stack, vid: str) -> int | None:
    """The template version the verification's first delivery recorded, once it is sent."""
    for _ in range(100):
        response = await stack.api.get(f"/v1/verifications/{vid}")
        delivery = response.json()["deliveries"][0]
        if delivery["status"] != "sending":
            found: int | None = delivery["template_version"]
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("the delivery was not sent")


async def sms_to(stack: Stack, locale: str, count: int) -> tuple[str, str]:
    vid = await stack.create(
        {"to": PHONE, "locale": locale, "channels": [{"channel": "sms", "timeout_s": 300}]}
    )
    sent = await stack.twilio.wait_for_sent("Messages", count)
    return vid, sent.form["Body"]


async def test_a_custom_template_is_delivered_per_locale_with_fallback_and_its_version(
    start_stack: StartStack,
) -> None:
    stack = await start_stack(admin_token=SecretStr(ADMIN_TOKEN))
    async with httpx.AsyncClient(base_url=stack.base_url) as admin:
        patched = await admin.patch(
            "/v1/admin/applications/default",
            json={"brand": "Acme", "defaults": {"locale": "es"}},
            headers=ADMIN,
        )
        assert patched.status_code == 200, patched.text
        fr = await save(admin, "sms", "fr", {"text": "{brand} : code {code}, {minutes} min."})
        es = await save(admin, "sms", "es", {"text": "{brand}: clave {code}"})
        mail = await save(
            admin,
            "email",
            "fr",
            {
                "text": "Bonjour, votre code {code}.",
                "subject": "Connexion {brand}",
                "html": "<p>Code <b>{code}</b> pour {brand}</p>",
            },
        )
        # The pre-approved Meta template the application sends on WhatsApp.
        wa = await save(
            admin,
            "whatsapp",
            "fr",
            {
                "text": "{code} est votre code {brand}.",
                "whatsapp_template_name": "acme_login",
                "whatsapp_language": "fr",
            },
        )

        # (All saved before the first delivery: a worker caches them for 5 s.)
        # fr-CA: the fr template (the WebOTP line appended last, as the catalogue does).
        vid, body = await sms_to(stack, "fr-CA", 1)
        assert body.startswith("Acme : code ") and body.endswith(
            f"\n\n@{stack.settings.webotp_domain} #{body.split()[3].rstrip(',')}"
        ), body
        assert await template_version(stack, vid) == fr

        # de has no template: the application's default locale (es).
        vid, body = await sms_to(stack, "de", 2)
        assert body.startswith("Acme: clave "), body
        assert await template_version(stack, vid) == es

        # WhatsApp, fr: the application's template name and language.
        vid = await stack.create(
            {"to": PHONE, "locale": "fr", "channels": [{"channel": "whatsapp", "timeout_s": 300}]}
        )
        sent = (await stack.meta.wait_for_sent()).json["template"]
        assert (sent["name"], sent["language"]) == ("acme_login", {"code": "fr"})
        assert await template_version(stack, vid) == wa

        # Email, fr: subject, text and HTML from the template.
        vid = await stack.create(
            {"to": EMAIL, "locale": "fr", "channels": [{"channel": "email", "timeout_s": 300}]}
        )
        message = await stack.smtp.sink.wait_for_message()
        assert message["Subject"] == "Connexion Acme"
        parts = email_parts(message)
        assert parts["text/plain"].startswith("Bonjour, votre code ")
        assert "pour Acme</p>" in parts["text/html"]
        assert await template_version(stack, vid) == mail

        # Email in de: no email template for de nor for es (the default): the catalogue.
        vid = await stack.create(
            {"to": EMAIL, "locale": "de", "channels": [{"channel": "email", "timeout_s": 300}]}
        )
        for _ in range(100):
            if len(stack.smtp.sink.received) == 2:
                break
            await asyncio.sleep(0.05)
        message = stack.smtp.sink.received[1][2]
        assert message["Subject"] == "Ihr Bestätigungscode für Acme"
        assert email_parts(message)["text/plain"].startswith("Ihr Bestätigungscode für Acme")
        assert await template_version(stack, vid) is None


def email_parts(message: EmailMessage) -> dict[str, str]:
    return {
        part.get_content_type(): part.get_content()
        for part in message.walk()
        if not part.is_multipart()
    }
