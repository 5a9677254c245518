"""deploy/prometheus/alerts.yml: well-formed alerting rules whose every metric is one the
service exposes (the API's registry and the worker's runtime endpoint, both served for
real here); `promtool check rules` too where promtool is installed."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from otp.observability import metrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
SUFFIXES = ("_bucket", "_count", "_sum")


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_named_once() -> None:
    found = rules()
    assert len(found) >= 6
    names = [r["alert"] for r in found]
    assert len(names) == len(set(names))
    for rule in found:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"])


async def _exposed() -> set[str]:
    """Metric names the API's registry and a worker runtime's endpoint expose."""
    api_text = metrics.exposition()[0].decode()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runtime = metrics.worker_runtime(f"127.0.0.1:{port}")
    assert runtime is not None
    worker = metrics.WorkerMetrics(runtime.metric_meter)
    worker.send(provider="twilio", channel="sms", outcome="sent")
    worker.finished.add(1, {"status": "approved", "channel": "sms", "country": "US"})
    worker.time_to_verify.record(1.0, {"channel": "sms"})
    worker.time_to_deliver.record(1.0, {"channel": "sms"})
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            try:
                worker_text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                if "otp_sends_total" in worker_text:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    names = set()
    for line in (api_text + "\n" + worker_text).splitlines():
        match = re.match(r"^(?:# TYPE )?(otp_[a-z_]+)", line)
        if match:
            names.add(match.group(1))
    return names


async def test_every_metric_in_the_rules_is_exposed() -> None:
    exposed = await _exposed()
    assert "otp_sends_total" in exposed and "otp_http_requests_total" in exposed
    used = {m for rule in rules() for m in re.findall(r"\b(otp_[a-z_]+)", rule["expr"])}
    assert used
    for name in used:
        base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
        assert name in exposed or base in exposed, f"{name} is not a metric the service exposes"


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (.ci/run installs Debian's prometheus)")
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
