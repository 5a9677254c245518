"""Install the web console on the API app: its routes under `/console/`, its static files
(CSS, scripts, vendored libraries) and its headers and error pages."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from api.console import web
from api.console.routes import applications, audit, auth, dashboard, lookup, quickstart

ROUTERS = (
    auth.router,
    audit.router,
    dashboard.router,
    lookup.router,
    applications.router,
    quickstart.router,
)


def install_console(app: FastAPI) -> None:
    app.middleware("http")(web.security_headers)
    app.add_exception_handler(web.LoginRequired, web.on_login_required)
    app.add_exception_handler(web.ConsoleRefused, web.on_refused)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=web.HERE / "static"), name="console-static")
