"""Random ids: the prefix, then lowercase base32 of the random bytes, no padding."""

from __future__ import annotations

import re

from otp.domain.ids import random_id
from otp.store.lockouts import new_lockout_id
from otp.store.risk_blocks import new_block_id
from otp.store.safe_list import new_entry_id
from otp.store.webhooks import new_endpoint_id


def test_ids_have_their_length_and_alphabet() -> None:
    ids = {random_id("app_") for _ in range(200)}
    assert len(ids) == 200 and all(re.fullmatch(r"app_[a-z2-7]{26}", i) for i in ids)
    assert re.fullmatch(r"x_[a-z2-7]{24}", random_id("x_", random_bytes=15))


def test_stored_objects_keep_their_id_formats() -> None:
    for make, prefix in (
        (new_lockout_id, "lck_"),
        (new_block_id, "blk_"),
        (new_entry_id, "sfl_"),
        (new_endpoint_id, "ep_"),
    ):
        assert re.fullmatch(re.escape(prefix) + r"[a-z2-7]{24}", make())
