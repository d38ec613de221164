"""Key names: hash tags that keep each operation in one slot and spread the cases."""

from __future__ import annotations

from redis.crc import key_slot

from bot.cases.references import draw_reference, is_valid
from bot.store import keys

SLOTS = 16384


def test_shard_n_hashes_into_the_nth_part_of_the_slot_space() -> None:
    width = SLOTS // keys.CASE_SHARDS
    for shard in keys.SHARDS:
        slot = key_slot(keys.cases_triage(shard).encode())
        assert shard * width <= slot < (shard + 1) * width


def test_every_key_of_a_case_is_in_its_shards_slot() -> None:
    reference = draw_reference(residue=5, modulus=keys.CASE_SHARDS)
    assert is_valid(reference) and keys.shard_of(reference) == 5
    slot = key_slot(keys.cases_triage(5).encode())
    for key in (keys.case(reference), keys.case_notes(reference), keys.shard_audit(5),
                keys.cases_outbox(5), keys.delivery(f"confirmation:{reference}", reference),
                keys.case_idempotency(5, "draft"), keys.cases_by_phone(5, "abc")):
        assert key_slot(key.encode()) == slot


def test_a_phone_keys_share_one_slot_and_phones_spread_over_shards() -> None:
    shard = keys.shard_of_phone("abc")
    slots = {key_slot(key.encode()) for key in (
        keys.phone_state("abc"), keys.lease("abc"), keys.abandoned_lease("abc", "t"),
        keys.case_idempotency(shard, "draft"), keys.cases_by_phone(shard, "abc"),
        keys.case(draw_reference(residue=shard, modulus=keys.CASE_SHARDS)))}
    assert len(slots) == 1  # the phone's state and its new cases: one script can do both
    assert len({keys.shard_of_phone(f"phone{n}") for n in range(200)}) == keys.CASE_SHARDS


def test_drawn_references_are_uniform_within_a_shard() -> None:
    for shard in (0, 7, 15):
        drawn = [draw_reference(residue=shard, modulus=keys.CASE_SHARDS) for _ in range(200)]
        assert all(is_valid(reference) for reference in drawn)
        assert {keys.shard_of(reference) for reference in drawn} == {shard}
        assert len(set(drawn)) > 190
