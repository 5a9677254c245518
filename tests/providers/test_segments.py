"""`providers.segments` keeps re-exporting the SMS logic that moved to `otp.sms`."""

from __future__ import annotations

import otp.sms
import providers.segments


def test_providers_segments_re_exports_otp_sms() -> None:
    for name in providers.segments.__all__:
        assert getattr(providers.segments, name) is getattr(otp.sms, name)
    assert providers.segments.segment_count("a" * 161) == 2
