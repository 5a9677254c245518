"""Re-export of `otp.sms` (the GSM-7/UCS-2 logic lives on the ground floor so templates can use it)."""

from __future__ import annotations

from otp.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_MULTI,
    GSM7_SINGLE,
    UCS2_MULTI,
    UCS2_SINGLE,
    SmsEncoding,
    SmsSegments,
    analyze,
    encoding_for,
    is_gsm7,
    non_gsm7_characters,
    segment_count,
)

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "GSM7_MULTI",
    "GSM7_SINGLE",
    "UCS2_MULTI",
    "UCS2_SINGLE",
    "SmsEncoding",
    "SmsSegments",
    "analyze",
    "encoding_for",
    "is_gsm7",
    "non_gsm7_characters",
    "segment_count",
]
