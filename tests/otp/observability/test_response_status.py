"""The ASGI `send` wrapper that the metrics and tracing middlewares read the status from."""

from __future__ import annotations

from starlette.types import Message

from otp.observability.metrics import ResponseStatus


async def test_it_notes_the_started_status_and_passes_every_message_on() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    status = ResponseStatus(send)
    assert status.code == 500  # nothing started yet: an error, should the app raise
    await status({"type": "http.response.start", "status": 204, "headers": []})
    await status({"type": "http.response.body", "body": b""})
    assert status.code == 204
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
