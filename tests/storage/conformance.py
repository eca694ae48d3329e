"""The storage contract, as tests every backend must pass.

Each test takes a ``storage`` (an opened, empty store) or a ``storage_factory`` (to reopen the
same store); ``conftest.py`` parametrises both over every backend. ``test_conformance.py``
imports this module so pytest collects it.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from kvault.errors import StorageConflict
from kvault.storage.base import ABSENT, Check, Delete, DeletePrefix, Put, Row, Storage

from .conftest import StorageFactory


async def keys(storage: Storage, prefix: str = "") -> list[str]:
    return [row.key for row in await storage.list(prefix)]


async def test_satisfies_protocol(storage: Storage) -> None:
    assert isinstance(storage, Storage)


async def test_get_missing_is_none(storage: Storage) -> None:
    assert await storage.get("nope") is None
    assert await storage.list("") == []


async def test_put_get_roundtrip_revisions(storage: Storage) -> None:
    assert await storage.commit([Put("s/a", b"one")]) == {"s/a": 1}
    assert await storage.get("s/a") == Row("s/a", b"one", 1)
    assert await storage.commit([Put("s/a", b"two")]) == {"s/a": 2}
    assert await storage.get("s/a") == Row("s/a", b"two", 2)


async def test_empty_commit_is_noop(storage: Storage) -> None:
    assert await storage.commit([]) == {}
    assert await storage.list("") == []


async def test_list_is_in_key_order(storage: Storage) -> None:
    names = ["p/c", "p/a", "p/b/x", "p/b", "p/aa", "p/A", "p/0"]
    await storage.commit([Put(k, k.encode()) for k in names])
    rows = await storage.list("p/")
    assert [r.key for r in rows] == sorted(names)
    assert all(r.value == r.key.encode() and r.revision == 1 for r in rows)


async def test_list_prefix_does_not_match_siblings(storage: Storage) -> None:
    names = ["a/b", "a/b/", "a/b/c", "a/bc", "a/b0", "a/a", "a/c", "a/", "a", "b/b"]
    await storage.commit([Put(k, b"v") for k in names])
    assert await keys(storage, "a/b/") == ["a/b/", "a/b/c"]
    assert await keys(storage, "a/b") == ["a/b", "a/b/", "a/b/c", "a/b0", "a/bc"]
    assert await keys(storage, "a/") == sorted(k for k in names if k.startswith("a/"))
    assert await keys(storage, "") == sorted(names)
    assert await keys(storage, "zzz") == []


async def test_list_start_after_and_limit_page_through(storage: Storage) -> None:
    names = [f"q/{i:03d}" for i in range(25)]
    await storage.commit([Put("p/z", b"before"), Put("r/a", b"after")])
    await storage.commit([Put(k, b"x") for k in names])
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await storage.list("q/", start_after=cursor, limit=7)
        assert len(page) <= 7
        if not page:
            break
        seen += [r.key for r in page]
        cursor = page[-1].key
    assert seen == names
    assert await keys(storage, "q/") == names
    assert [r.key for r in await storage.list("q/", limit=3)] == names[:3]
    assert await storage.list("q/", limit=0) == []
    # start_after need not be an existing key, and may sort before the prefix.
    assert [r.key for r in await storage.list("q/", start_after="q/0105")] == names[11:]
    assert [r.key for r in await storage.list("q/", start_after="a")] == names
    assert await storage.list("q/", start_after="q/999") == []


#: Characters around every UTF-8 length boundary, plus the largest BMP and astral code points.
ODD_CHARS = "\x7f \x00 \u00e9 \u00ff \u0100 \u07ff \ud7ff \ue000 \uffff \U00010000 \U0010ffff"


@pytest.mark.parametrize("odd", ODD_CHARS.split(" "))
async def test_prefix_bound_with_non_ascii_keys(storage: Storage, odd: str) -> None:
    """Bytewise (UTF-8) order, and prefix bounds that hold next to the largest code points."""
    inside = [f"k/{odd}", f"k/{odd}{odd}", f"k/{odd}/x", f"k/{odd}\U0010ffff"]
    near = ["k/", "k0", "k/\x01", "k/zz", "k/\u00ff", "k/\ue000", "k/\U00010000", "k/\U0010fffe"]
    if not 0xD7FF <= ord(odd) < 0xE000 and ord(odd) < 0x10FFFF:
        near.append(f"k/{chr(ord(odd) + 1)}")  # the immediate successor must stay outside
    inside = sorted(set(inside), key=lambda k: k.encode())
    outside = sorted({k for k in near if not k.startswith(f"k/{odd}")}, key=lambda k: k.encode())
    everything = sorted(inside + outside, key=lambda k: k.encode())
    await storage.commit([Put(k, k.encode()) for k in everything])
    assert await keys(storage) == everything, "list order must be bytewise UTF-8"
    assert await keys(storage, f"k/{odd}") == inside
    for k in everything:
        assert await storage.get(k) == Row(k, k.encode(), 1)
    await storage.commit([DeletePrefix(f"k/{odd}")])
    assert await keys(storage) == outside


async def test_expect_absent_on_existing_conflicts(storage: Storage) -> None:
    await storage.commit([Put("c/k", b"first")])
    with pytest.raises(StorageConflict) as err:
        await storage.commit([Put("c/k", b"second", expect=ABSENT)])
    assert "c/k" in err.value.message
    assert "second" not in err.value.message and "first" not in err.value.message
    assert await storage.get("c/k") == Row("c/k", b"first", 1)


async def test_expect_absent_creates_and_expect_revision_updates(storage: Storage) -> None:
    assert await storage.commit([Put("c/k", b"1", expect=ABSENT)]) == {"c/k": 1}
    assert await storage.commit([Put("c/k", b"2", expect=1)]) == {"c/k": 2}
    assert await storage.get("c/k") == Row("c/k", b"2", 2)


async def test_expect_wrong_revision_conflicts(storage: Storage) -> None:
    await storage.commit([Put("c/k", b"v1")])
    await storage.commit([Put("c/k", b"v2")])
    with pytest.raises(StorageConflict) as err:
        await storage.commit([Put("c/k", b"v3", expect=1)])
    assert "c/k" in err.value.message and "1" in err.value.message and "2" in err.value.message
    assert await storage.get("c/k") == Row("c/k", b"v2", 2)
    with pytest.raises(StorageConflict):
        await storage.commit([Put("c/missing", b"v", expect=1)])
    assert await storage.get("c/missing") is None


async def test_failed_check_aborts_whole_batch(storage: Storage) -> None:
    await storage.commit([Put("b/existing", b"old"), Put("b/guard", b"g")])
    with pytest.raises(StorageConflict) as err:
        await storage.commit(
            [
                Put("b/new", b"new"),
                Put("b/existing", b"changed"),
                Delete("b/guard"),
                DeletePrefix("b/"),
                Check("b/other", 3),
            ]
        )
    assert "b/other" in err.value.message
    assert await storage.list("b/") == [
        Row("b/existing", b"old", 1),
        Row("b/guard", b"g", 1),
    ]


async def test_check_passes_without_writing(storage: Storage) -> None:
    await storage.commit([Put("g/a", b"a")])
    result = await storage.commit([Check("g/a", 1), Check("g/none", ABSENT), Put("g/b", b"b")])
    assert result == {"g/b": 1}
    assert await storage.get("g/a") == Row("g/a", b"a", 1)
    with pytest.raises(StorageConflict):
        await storage.commit([Check("g/a", ABSENT)])
    with pytest.raises(StorageConflict):
        await storage.commit([Check("g/none", 1)])


async def test_delete_with_and_without_expect(storage: Storage) -> None:
    await storage.commit([Put("d/a", b"a"), Put("d/b", b"b")])
    await storage.commit([Put("d/a", b"a2")])
    with pytest.raises(StorageConflict):
        await storage.commit([Delete("d/a", expect=1)])
    assert await storage.get("d/a") == Row("d/a", b"a2", 2)
    with pytest.raises(StorageConflict):
        await storage.commit([Delete("d/a", expect=ABSENT)])
    await storage.commit([Delete("d/a", expect=2)])
    assert await storage.get("d/a") is None
    await storage.commit([Delete("d/never")])  # missing row: fine without expect
    with pytest.raises(StorageConflict):
        await storage.commit([Delete("d/never", expect=1)])
    await storage.commit([Delete("d/b")])
    assert await storage.list("d/") == []


async def test_recreated_row_starts_at_revision_one(storage: Storage) -> None:
    await storage.commit([Put("r/a", b"1")])
    await storage.commit([Put("r/a", b"2")])
    await storage.commit([Delete("r/a")])
    assert await storage.commit([Put("r/a", b"3", expect=ABSENT)]) == {"r/a": 1}


async def test_delete_prefix_removes_only_that_prefix(storage: Storage) -> None:
    names = ["v/a", "v/a/", "v/a/1", "v/a/2/x", "v/ab", "v/a0", "v/", "v/b/1", "w/a/1"]
    await storage.commit([Put(k, b"x") for k in names])
    await storage.commit([DeletePrefix("v/a/")])
    assert await keys(storage) == sorted(["v/a", "v/ab", "v/a0", "v/", "v/b/1", "w/a/1"])
    await storage.commit([DeletePrefix("v/")])
    assert await keys(storage) == ["w/a/1"]
    await storage.commit([DeletePrefix("nothing/")])
    assert await keys(storage) == ["w/a/1"]


async def test_ops_in_a_batch_apply_in_order(storage: Storage) -> None:
    result = await storage.commit(
        [
            Put("o/a", b"1", expect=ABSENT),
            Put("o/a", b"2", expect=1),
            Check("o/a", 2),
            Put("o/gone", b"x"),
            DeletePrefix("o/g"),
            Check("o/gone", ABSENT),
            Put("o/b", b"b"),
        ]
    )
    assert result["o/a"] == 2 and result["o/b"] == 1
    assert await storage.list("o/") == [Row("o/a", b"2", 2), Row("o/b", b"b", 1)]


async def test_multi_key_commit_is_atomic(storage: Storage) -> None:
    await storage.commit([Put("m/0", b"seed")])
    batch = [Put(f"m/{i}", f"v{i}".encode()) for i in range(1, 50)]
    assert await storage.commit(batch) == {f"m/{i}": 1 for i in range(1, 50)}
    assert len(await storage.list("m/")) == 50
    # Same batch with a stale expect at the very end: none of the 49 overwrites lands.
    stale = [Put(f"m/{i}", b"new") for i in range(1, 50)] + [Put("m/0", b"new", expect=ABSENT)]
    with pytest.raises(StorageConflict):
        await storage.commit(stale)
    rows = await storage.list("m/")
    assert all(r.value != b"new" for r in rows)
    assert {r.revision for r in rows} == {1}


async def test_concurrent_cas_increments_are_exact(storage: Storage) -> None:
    tasks, per_task = 50, 4
    conflicts = 0

    async def increment() -> None:
        nonlocal conflicts
        for _ in range(per_task):
            while True:
                row = await storage.get("ctr")
                count = 0 if row is None else int(row.value)
                expect = ABSENT if row is None else row.revision
                try:
                    await storage.commit([Put("ctr", str(count + 1).encode(), expect=expect)])
                    break
                except StorageConflict:
                    conflicts += 1
                    await asyncio.sleep(0)

    await asyncio.gather(*(increment() for _ in range(tasks)))
    row = await storage.get("ctr")
    assert row is not None
    assert int(row.value) == tasks * per_task
    assert row.revision == tasks * per_task
    assert conflicts > 0, "the tasks never raced: the test did not exercise CAS"


async def test_concurrent_independent_commits_all_land(storage: Storage) -> None:
    await asyncio.gather(*(storage.commit([Put(f"i/{n:03d}", b"%d" % n)]) for n in range(100)))
    rows = await storage.list("i/")
    assert [r.value for r in rows] == [b"%d" % n for n in range(100)]


@pytest.mark.parametrize("size", [0, 1, 255, 4096, 65_537, 1 << 20])
async def test_binary_values_roundtrip(storage: Storage, size: int) -> None:
    value = (b"\x00" + os.urandom(size - 2) + b"\x00")[:size] if size >= 2 else b"\x00" * size
    await storage.commit([Put("bin/v", value)])
    row = await storage.get("bin/v")
    assert row is not None and row.value == value and type(row.value) is bytes
    assert (await storage.list("bin/"))[0].value == value


async def test_reopen_keeps_data(storage_factory: StorageFactory) -> None:
    first = await storage_factory.open()
    big = os.urandom(1 << 20)
    await first.commit([Put("keep/a", b"a"), Put("keep/big", big)])
    await first.commit([Put("keep/a", b"a2"), Put("keep/gone", b"x")])
    await first.commit([Delete("keep/gone")])
    await first.close()
    second = await storage_factory.open()
    try:
        assert await second.list("keep/") == [
            Row("keep/a", b"a2", 2),
            Row("keep/big", big, 1),
        ]
        assert await second.commit([Put("keep/a", b"a3", expect=2)]) == {"keep/a": 3}
    finally:
        await second.close()


async def test_close_is_idempotent(storage_factory: StorageFactory) -> None:
    handle = await storage_factory.open()
    await handle.commit([Put("x", b"y")])
    await handle.close()
    await handle.close()
    with pytest.raises(RuntimeError):
        await handle.get("x")
