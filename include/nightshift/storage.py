"""Object storage behind one interface: a local folder (`file://`) or S3 (`s3://`), chosen by URI.

A partition is a key prefix holding data files and a `_SUCCESS` manifest written last; readers
trust a partition only when its manifest is there, so a partition is either absent or complete.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

MARKER = "_SUCCESS"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
}


class StorageError(RuntimeError):
    """An object store could not be reached or used; the message names the store and what to check."""


class ObjectStore(Protocol):
    uri: str

    def url_for(self, key: str) -> str: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, local_path: Path) -> None: ...
    def get_file(self, key: str, local_path: Path) -> Path: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> None: ...


def content_type_for(key: str) -> str:
    return CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream")


class LocalStore:
    """A folder on the local disk; keys are relative paths below it."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.root = Path(urlparse(uri).path)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in (path, *path.parents):
            raise StorageError(f"{self.uri}: key {key!r} points outside the store")
        return path

    def url_for(self, key: str) -> str:
        return f"{self.uri}/{key}"

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url_for(key)}: no such object") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def put_file(self, key: str, local_path: Path) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        shutil.copyfile(local_path, tmp)
        tmp.replace(path)

    def get_file(self, key: str, local_path: Path) -> Path:
        path = self._path(key)
        if not path.exists():
            raise FileNotFoundError(f"{self.url_for(key)}: no such object")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            str(path.relative_to(self.root.resolve()))
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )

    def delete_prefix(self, prefix: str) -> None:
        base = self._path(prefix)
        if base.is_dir():
            shutil.rmtree(base)
        elif base.is_file():
            base.unlink()


STORE_TYPES: dict[str, Callable[[str], ObjectStore]] = {"file": LocalStore}


def open_store(uri: str) -> ObjectStore:
    """The store for a URI such as `file:///data/nightshift` or `s3://bucket/prefix`."""
    scheme = urlparse(uri).scheme
    try:
        factory = STORE_TYPES[scheme]
    except KeyError:
        raise StorageError(
            f"object store URI {uri!r}: scheme {scheme!r} is not supported; use one of "
            + ", ".join(f"{name}://" for name in sorted(STORE_TYPES))
        ) from None
    return factory(uri)


def partition_key(area: str, model: str, dt: str) -> str:
    return f"{area}/{model}/dt={dt}"


def is_complete(store: ObjectStore, prefix: str) -> bool:
    return store.exists(f"{prefix}/{MARKER}")


def read_manifest(store: ObjectStore, prefix: str) -> dict[str, Any] | None:
    if not is_complete(store, prefix):
        return None
    return json.loads(store.read_bytes(f"{prefix}/{MARKER}"))


def partition_files(store: ObjectStore, prefix: str, suffix: str = "") -> list[str]:
    """Data files of a complete partition (an incomplete one has none)."""
    if not is_complete(store, prefix):
        return []
    return [key for key in store.list(prefix) if not Path(key).name.startswith("_") and key.endswith(suffix)]


@contextmanager
def partition_writer(store: ObjectStore, prefix: str, manifest: dict[str, Any]) -> Iterator[Path]:
    """Stage files in a local folder, then replace the partition whole with them and write the manifest last.

    Everything written into the yielded folder becomes the partition; if the body raises, the old
    partition is left untouched.
    """
    with tempfile.TemporaryDirectory(prefix="nightshift-") as staging:
        folder = Path(staging)
        yield folder
        store.delete_prefix(f"{prefix}/{MARKER}")
        store.delete_prefix(prefix)
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        for path in files:
            store.put_file(f"{prefix}/{path.relative_to(folder)}", path)
        body = {**manifest, "files": [str(path.relative_to(folder)) for path in files]}
        store.write_bytes(f"{prefix}/{MARKER}", json.dumps(body, indent=2, sort_keys=True).encode())


def remove_partition(store: ObjectStore, prefix: str) -> None:
    store.delete_prefix(f"{prefix}/{MARKER}")
    store.delete_prefix(prefix)


def write_json(store: ObjectStore, key: str, payload: Any) -> None:
    store.write_bytes(key, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


def read_json(store: ObjectStore, key: str) -> Any:
    return json.loads(store.read_bytes(key))
