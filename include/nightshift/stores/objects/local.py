"""A store in a folder on the local disk (`file://`), whose keys never leave that folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

from nightshift.stores.objects.base import StorageError


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

    def copy(self, source_key: str, key: str) -> None:
        self.put_file(key, self.get_file(source_key, Path()))

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
