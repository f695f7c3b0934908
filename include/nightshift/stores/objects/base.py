"""The object store's interface, the error it raises, and what every store shares: content types and JSON objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

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
    def copy(self, source_key: str, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> None: ...


def content_type_for(key: str) -> str:
    return CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream")


def write_json(store: ObjectStore, key: str, payload: Any) -> None:
    store.write_bytes(key, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


def read_json(store: ObjectStore, key: str) -> Any:
    return json.loads(store.read_bytes(key))
