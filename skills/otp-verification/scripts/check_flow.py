#!/usr/bin/env python3
"""Run one verification end to end against a running service (test mode); exit 0 on approved.

    OTP_URL=http://127.0.0.1:8000 OTP_API_KEY=otp_test_... python3 check_flow.py
    OTP_URL=... OTP_API_KEY=... python3 check_flow.py --app http://127.0.0.1:3000

Without `--app`: start a verification, read its code from the sandbox inbox, check a
wrong code (refused) and the right one (approved), straight against the service's API.

With `--app URL`: the same through the integration's own routes (`--send-path`,
default `/otp/send`, with `{"to": ...}`; `--verify-path`, default `/otp/verify`, with
`{"code": ...}`; one cookie jar, as a browser would), reading the code from the sandbox
inbox with the key: the wrong code must get a non-2xx answer and the right one a 2xx.

Needs a test-mode key (`otp_test_...`): live keys have no sandbox inbox. Standard library
only (Python 3.9+). Exit 0: approved; 1: the flow failed; 2: bad arguments or environment.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

TIMEOUT_S = 30
INBOX_WAIT_S = 10


class FlowError(Exception):
    """A step failed: the message says which and what to do."""


def _request(
    opener: urllib.request.OpenerDirector,
    method: str,
    url: str,
    *,
    key: str | None = None,
    body: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise FlowError(f"{url} is not an http(s) URL")
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with opener.open(request, timeout=TIMEOUT_S) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FlowError(f"cannot reach {url}: {reason}. Is the stack running?") from None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def _problem(status: int, body: Any) -> str:
    if isinstance(body, dict) and "type" in body:
        detail = f": {body['detail']}" if body.get("detail") else ""
        return f"{status} {body['type']}{detail}"
    return f"{status} {str(body)[:200]}"


def _explain(step: str, status: int, body: Any) -> FlowError:
    kind = body.get("type", "") if isinstance(body, dict) else ""
    if kind.endswith(":unauthorized"):
        hint = "OTP_API_KEY is not accepted by this service (wrong, revoked or for another stack)"
    elif kind.endswith(":forbidden"):
        hint = "this is a live key: use a test-mode key (otp_test_...), which has a sandbox inbox"
    else:
        hint = "see the problem above"
    return FlowError(f"{step} failed with {_problem(status, body)}\n  -> {hint}")


def _code(body: str, length: int | None) -> str:
    sizes = f"{{{length}}}" if length else "{4,10}"
    candidates: list[str] = re.findall(rf"\b([0-9A-Z]{sizes})\b", body)
    with_digit = [c for c in candidates if any(ch.isdigit() for ch in c)]
    if not (with_digit or candidates):
        raise FlowError(f"no code found in the sandbox message: {body!r}")
    return (with_digit or candidates)[0]


def _inbox_code(
    opener: urllib.request.OpenerDirector,
    base: str,
    key: str,
    query: dict[str, str],
    length: int | None,
) -> str:
    params = urllib.parse.urlencode({**query, "wait": INBOX_WAIT_S})
    status, body = _request(opener, "GET", f"{base}/v1/sandbox/messages?{params}", key=key)
    if status != 200:
        raise _explain("reading the sandbox inbox", status, body)
    messages = body.get("messages", []) if isinstance(body, dict) else []
    if not messages:
        raise FlowError(
            f"no message in the sandbox inbox for {query} within {INBOX_WAIT_S} s: is the "
            "worker running (make run / otp dev starts it)?"
        )
    return _code(str(messages[0].get("body", "")), length)


def _wrong(code: str) -> str:
    return "".join("1" if c != "1" else "2" for c in code)


def check_api(base: str, key: str, to: str) -> dict[str, Any]:
    """Start, read the code, check a wrong then the right code, against the API itself."""
    opener = urllib.request.build_opener()
    status, created = _request(opener, "POST", f"{base}/v1/verifications", key=key, body={"to": to})
    if status != 201:
        raise _explain("starting a verification (POST /v1/verifications)", status, created)
    vid = created["id"]
    code = _inbox_code(opener, base, key, {"verification_id": vid}, created.get("code_length"))
    check_url = f"{base}/v1/verifications/{vid}/check"
    status, wrong = _request(opener, "POST", check_url, key=key, body={"code": _wrong(code)})
    if status != 200 or wrong.get("valid") is not False:
        raise _explain("checking a wrong code (it must be refused)", status, wrong)
    status, right = _request(opener, "POST", check_url, key=key, body={"code": code})
    if status != 200 or right.get("status") != "approved":
        raise _explain("checking the code from the inbox", status, right)
    return {"verification_id": vid, "status": right["status"], "to": created.get("to")}


def check_app(
    base: str, key: str, app: str, to: str, send_path: str, verify_path: str
) -> dict[str, Any]:
    """The same flow through the integration's routes, with one cookie jar."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    send_url, verify_url = (
        urllib.parse.urljoin(app, send_path),
        urllib.parse.urljoin(app, verify_path),
    )
    status, sent = _request(opener, "POST", send_url, body={"to": to})
    if not 200 <= status < 300:
        raise FlowError(f"the app's send route {send_url} answered {_problem(status, sent)}")
    code = _inbox_code(urllib.request.build_opener(), base, key, {"to": to}, None)
    status, wrong = _request(opener, "POST", verify_url, body={"code": _wrong(code)})
    if 200 <= status < 300:
        raise FlowError(
            f"the app's verify route {verify_url} accepted a wrong code ({status} {wrong}): "
            "it must check the code with POST /v1/verifications/{id}/check"
        )
    status, right = _request(opener, "POST", verify_url, body={"code": code})
    if not 200 <= status < 300:
        raise FlowError(
            f"the app's verify route {verify_url} refused the right code: {_problem(status, right)}"
        )
    return {"app": app, "to": to, "sent": sent, "verified": right}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("OTP_URL"), help="default: $OTP_URL")
    parser.add_argument("--to", help="destination (default: a new @example.com address)")
    parser.add_argument("--app", help="the integration's base URL: drive its routes instead")
    parser.add_argument("--send-path", default="/otp/send")
    parser.add_argument("--verify-path", default="/otp/verify")
    args = parser.parse_args(argv)
    key = os.environ.get("OTP_API_KEY", "")
    if not args.url:
        print("check_flow: set OTP_URL (e.g. http://127.0.0.1:8000) or pass --url", file=sys.stderr)
        return 2
    if not key:
        print("check_flow: set OTP_API_KEY to a test-mode key (otp_test_...)", file=sys.stderr)
        return 2
    if key.startswith("otp_live_"):
        print(
            "check_flow: OTP_API_KEY is a live key: use a test-mode key (otp_test_...)",
            file=sys.stderr,
        )
        return 2
    base = args.url.rstrip("/")
    to = args.to or f"check-{uuid.uuid4().hex[:12]}@example.com"
    try:
        if args.app:
            result = check_app(base, key, args.app, to, args.send_path, args.verify_path)
        else:
            result = check_api(base, key, to)
    except FlowError as error:
        print(f"check_flow: FAILED: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"ok": True, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
