"""A real HTTP server on 127.0.0.1 that each test scripts to speak a provider's wire format.

uvicorn serves a tiny Starlette app on a pre-bound free port, inside the session's event
loop. Every request is recorded (method, path, query, headers, raw body, parsed form or
JSON) and answered by the test's `handler`, so tests exercise the adapters over real
sockets: auth headers, encodings, status codes, slow answers and all.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from tests.helpers.scripted_provider import ProviderServer


@pytest.fixture(scope="session")
async def _provider_server() -> AsyncIterator[ProviderServer]:
    server = ProviderServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def server(_provider_server: ProviderServer) -> ProviderServer:
    _provider_server.reset()
    return _provider_server


@pytest.fixture
def closed_port_url() -> str:
    """A URL on which nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
