"""The FastAPI exception handlers: every error answered as `application/problem+json`.

`install_exception_handlers` registers them: `ApiProblem`s raised by routes and services,
request validation failures, HTTP errors (unknown routes, wrong methods), Temporal
errors that escape (mapped by `api.temporal_errors`) and anything unexpected (logged
without personal data, answered as a 500 problem).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from api.problems import PROBLEM_JSON, ApiProblem, field_error, invalid, param_error
from api.temporal_errors import problem_from_temporal

logger = logging.getLogger("otp.api")


def problem_response(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.url.path
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    if extensions:
        body.update(extensions)
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON
    )


def render_problem(request: Request, problem: ApiProblem) -> JSONResponse:
    return problem_response(
        request,
        status=problem.status,
        type_=problem.type,
        title=problem.title,
        detail=problem.detail,
        headers=problem.headers,
        extensions=problem.extensions,
    )


_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def _validation_entry(error: Mapping[str, Any]) -> dict[str, str]:
    """One pydantic error as a problem `errors` entry; the submitted value is never echoed."""
    loc = [str(part) for part in error.get("loc", ())]
    detail = str(error.get("msg", "invalid value"))
    code = str(error.get("type", "value_error"))
    where = loc[0] if loc and loc[0] in _LOCATIONS else "body"
    rest = loc[1:] if loc and loc[0] in _LOCATIONS else loc
    if where == "body":
        pointer = "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in rest)
        return field_error(pointer if rest else "#", detail, code)
    return param_error(where, ".".join(rest), detail, code)


async def _on_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return render_problem(request, invalid([_validation_entry(e) for e in exc.errors()]))


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized"}
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such resource."
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return problem_response(
        request,
        status=exc.status_code,
        type_="about:blank",
        title=titles.get(exc.status_code, detail or "HTTP error"),
        detail=detail,
        headers=headers,
    )


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to (Starlette names only the first route's)."""
    methods: set[str] = set()
    path = request.url.path
    pending: list[Any] = list(request.app.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)
        if included is not None:
            pending.extend(included.routes)
            continue
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _on_api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return render_problem(request, exc)


async def _on_temporal_error(request: Request, exc: Exception) -> Response:
    problem = problem_from_temporal(exc)
    if problem.status >= 500:
        logger.warning(
            "temporal call failed",
            extra={
                "error": type(exc).__name__,
                "rpc_status": exc.status.name if isinstance(exc, RPCError) else None,
                "path": request.url.path,
                "problem": problem.slug,
            },
        )
    return render_problem(request, problem)


def log_unexpected(request: Request, exc: BaseException) -> None:
    """Log an unexpected error without personal data: class name and frames, no message."""
    logger.error(
        "unhandled error",
        extra={
            "error": type(exc).__name__,
            "method": request.method,
            "path": request.url.path,  # never the query string: it may hold a destination
            "request_id": getattr(request.state, "request_id", None),
            "traceback": "".join(traceback.format_tb(exc.__traceback__)),
        },
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log_unexpected(request, exc)
    return render_problem(request, ApiProblem("An unexpected error occurred."))


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(ApiProblem, _on_api_problem)
    for cls in (TemporalError, RPCError, TimeoutError):
        app.add_exception_handler(cls, _on_temporal_error)
    app.add_exception_handler(Exception, on_unexpected)
