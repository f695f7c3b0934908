import pytest

from nightshift.storage import (
    MARKER,
    StorageError,
    is_complete,
    open_store,
    partition_files,
    partition_writer,
    read_manifest,
)


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "store").as_uri())


def test_partition_is_replaced_whole_and_manifest_written_last(store):
    with partition_writer(store, "curated/m/dt=2026-10-01", {"rows": 2}) as folder:
        (folder / "a.parquet").write_bytes(b"one")
        (folder / "b.parquet").write_bytes(b"two")
    with partition_writer(store, "curated/m/dt=2026-10-01", {"rows": 1}) as folder:
        (folder / "c.parquet").write_bytes(b"three")
    assert partition_files(store, "curated/m/dt=2026-10-01") == ["curated/m/dt=2026-10-01/c.parquet"]
    assert read_manifest(store, "curated/m/dt=2026-10-01") == {"rows": 1, "files": ["c.parquet"]}


def test_failed_write_leaves_the_old_partition(store):
    with partition_writer(store, "p/dt=1", {}) as folder:
        (folder / "old.csv").write_bytes(b"x")
    with pytest.raises(RuntimeError), partition_writer(store, "p/dt=1", {}) as folder:
        (folder / "new.csv").write_bytes(b"y")
        raise RuntimeError("boom")
    assert partition_files(store, "p/dt=1") == ["p/dt=1/old.csv"]


def test_partition_without_marker_is_invisible(store):
    store.write_bytes("p/dt=2/data.csv", b"half written")
    assert not is_complete(store, "p/dt=2")
    assert partition_files(store, "p/dt=2") == []
    store.write_bytes(f"p/dt=2/{MARKER}", b"{}")
    assert partition_files(store, "p/dt=2") == ["p/dt=2/data.csv"]


def test_keys_cannot_escape_the_store(store):
    with pytest.raises(StorageError, match="outside the store"):
        store.write_bytes("../escape.txt", b"x")


def test_unknown_scheme_names_the_supported_ones():
    with pytest.raises(StorageError, match=r"scheme 'gopher' is not supported; use one of file://"):
        open_store("gopher://host/x")
