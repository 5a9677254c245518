"""`otp templates list|set|preview|delete`: an application's message templates.

The same services as the admin API (`api.services.templates`): a `set` is validated the
same way and saves a new version; refused input prints every broken rule and exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import AppOption, JsonOption, in_store_or_fail, print_json, table, when

if TYPE_CHECKING:
    from otp.store import Store

templates_app = typer.Typer(
    help="Message templates per channel and locale (versioned; the active one is sent).",
    no_args_is_help=True,
)

ChannelOption = Annotated[str, typer.Option("--channel", help="sms, whatsapp or email.")]
LocaleOption = Annotated[str, typer.Option("--locale", help="BCP 47 tag: en, pt-BR, ...")]
TextOption = Annotated[
    str | None, typer.Option("--text", help="The text, with {code} {brand} {minutes} ...")
]
TextFileOption = Annotated[
    Path | None, typer.Option("--text-file", help="Read the text from this file.")
]
SubjectOption = Annotated[str | None, typer.Option("--subject", help="Email: the subject.")]
HtmlFileOption = Annotated[
    Path | None, typer.Option("--html-file", help="Email: the HTML part, from this file.")
]


def _channel(value: str) -> Any:
    from otp.domain import Channel

    try:
        return Channel(value)
    except ValueError:
        raise typer.BadParameter("sms, whatsapp or email", param_hint="--channel") from None


def list_templates(application_id: AppOption, as_json: JsonOption = False) -> None:
    """The active template of each channel and locale."""
    from api.services import templates as service

    async def work(store: Store) -> Any:
        return await service.list_templates(store, application_id=application_id)

    found = in_store_or_fail(work)
    if as_json:
        print_json([t.model_dump(mode="json") for t in found])
        return
    if not found:
        typer.echo("no templates: the built-in catalogue is used")
        return
    rows = [["CHANNEL", "LOCALE", "VERSION", "SAVED", "TEXT"]]
    for t in found:
        text = t.text.replace("\n", " ")
        rows.append([t.channel.value, t.locale, str(t.version), when(t.created_at), text[:60]])
    table(rows)


def set_template(
    application_id: AppOption,
    channel: ChannelOption,
    locale: LocaleOption,
    text: TextOption = None,
    text_file: TextFileOption = None,
    subject: SubjectOption = None,
    html_file: HtmlFileOption = None,
    whatsapp_template: Annotated[
        str | None, typer.Option(help="WhatsApp: the pre-approved template's name.")
    ] = None,
    whatsapp_language: Annotated[
        str | None, typer.Option(help="WhatsApp: the approved template's language.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate and save a new version (it becomes the active one)."""
    from api.schemas.templates import TemplateBody
    from api.services import templates as service

    if text is None and text_file is not None:
        text = text_file.read_text(encoding="utf-8")
    elif text is None or text_file is not None:
        raise typer.BadParameter("give --text or --text-file", param_hint="--text")
    body = TemplateBody(
        text=text,
        subject=subject,
        html=html_file.read_text(encoding="utf-8") if html_file is not None else None,
        whatsapp_template_name=whatsapp_template,
        whatsapp_language=whatsapp_language,
    )
    kind = _channel(channel)

    async def work(store: Store) -> Any:
        return await service.save_template(
            store,
            application_id=application_id,
            channel=kind,
            locale=locale,
            body=body,
            actor="cli",
        )

    saved = in_store_or_fail(work)
    if as_json:
        print_json(saved.model_dump(mode="json"))
        return
    typer.echo(f"saved {saved.channel.value}/{saved.locale} version {saved.version}")
    if saved.sms is not None:
        typer.echo(f"SMS: {saved.sms.encoding.value}, {saved.sms.segments} segment(s)")


def preview(
    application_id: AppOption,
    channel: ChannelOption,
    locale: LocaleOption = "en",
    code: Annotated[str, typer.Option(help="The sample code.")] = "123456",
    as_json: JsonOption = False,
) -> None:
    """Render what a delivery would send (template, default locale, catalogue); send nothing."""
    from api.schemas.templates import PreviewRequest
    from api.services import templates as service

    try:
        request = PreviewRequest(channel=_channel(channel), locale=locale, code=code)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    async def work(store: Store) -> Any:
        return await service.preview(store, application_id=application_id, body=request)

    shown = in_store_or_fail(work)
    if as_json:
        print_json(shown.model_dump(mode="json"))
        return
    source = f"template version {shown.version}" if shown.version else shown.source
    typer.echo(f"{shown.channel.value}/{shown.locale} from {source}")
    if shown.subject:
        typer.echo(f"Subject: {shown.subject}")
    typer.echo(shown.text)
    if shown.sms is not None:
        typer.echo(f"-- {shown.sms.encoding.value}, {shown.sms.segments} segment(s)")


def delete(application_id: AppOption, channel: ChannelOption, locale: LocaleOption) -> None:
    """Go back to the built-in catalogue for this channel and locale (versions are kept)."""
    from api.services import templates as service

    kind = _channel(channel)

    async def work(store: Store) -> None:
        await service.delete_template(
            store, application_id=application_id, channel=kind, locale=locale
        )

    in_store_or_fail(work)
    typer.echo(f"{kind.value}/{locale}: back to the built-in catalogue")


templates_app.command("list")(list_templates)
templates_app.command("set")(set_template)
templates_app.command("preview")(preview)
templates_app.command("delete")(delete)
