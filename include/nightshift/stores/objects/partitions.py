"""Partitions: a key prefix whose `_SUCCESS` manifest names its current revision, published old-or-new at every instant.

A partition's current revision is a folder `rev=<revision>/` of files written before the manifest switched to it.
Readers go through the manifest, so at every instant they see the previous complete revision or the new one, never a
mix and never a gap; a partition without a manifest is absent. Drops and label drops arrive in the upstream layout
(files beside the marker) and are read as they are.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nightshift.stores.objects.base import ObjectStore, read_json

MARKER = "_SUCCESS"
REVISION_DIR = "rev="
REPORT_AREAS = ("reports", "validation", "quarantine")
"""Partitions people open by address: every revision is kept (the night's history) and the current revision's files
are also copied to the partition's own folder, under the names the README lists."""
DATA_REVISIONS_KEPT = 2
"""Revisions any other partition keeps: the current one and the one before it, for readers that started on it."""


def partition_key(area: str, model: str, dt: str) -> str:
    return f"{area}/{model}/dt={dt}"


def is_complete(store: ObjectStore, prefix: str) -> bool:
    return store.exists(f"{prefix}/{MARKER}")


def read_manifest(store: ObjectStore, prefix: str) -> dict[str, Any] | None:
    if not is_complete(store, prefix):
        return None
    return json.loads(store.read_bytes(f"{prefix}/{MARKER}"))


def _revision_base(prefix: str, manifest: dict[str, Any]) -> str:
    revision = manifest.get("revision")
    return f"{prefix}/{REVISION_DIR}{revision}" if revision else prefix


def partition_files(store: ObjectStore, prefix: str, suffix: str = "") -> list[str]:
    """Keys of the data files of the partition's current revision (an incomplete partition has none)."""
    manifest = read_manifest(store, prefix)
    if manifest is None:
        return []
    if manifest.get("revision"):
        base = _revision_base(prefix, manifest)
        return [f"{base}/{name}" for name in manifest.get("files", []) if name.endswith(suffix)]
    return [key for key in store.list(prefix) if not Path(key).name.startswith("_") and key.endswith(suffix)]


def partition_file(store: ObjectStore, prefix: str, name: str) -> str:
    """The key of file `name` in the partition's current revision; FileNotFoundError when it has none."""
    manifest = read_manifest(store, prefix)
    if manifest is None:
        raise FileNotFoundError(f"{store.url_for(prefix)}: no complete partition (no {MARKER})")
    if manifest.get("revision") and name not in manifest.get("files", []):
        raise FileNotFoundError(f"{store.url_for(prefix)}: its current revision holds no {name}")
    return f"{_revision_base(prefix, manifest)}/{name}"


def partition_url(store: ObjectStore, prefix: str, name: str) -> str:
    """The address of file `name` in the partition's current revision."""
    return store.url_for(partition_file(store, prefix, name))


def read_partition_json(store: ObjectStore, prefix: str, name: str) -> Any:
    return read_json(store, partition_file(store, prefix, name))


FaultHook = Callable[[str, str], None]
_fault_hook: FaultHook | None = None


def set_fault_hook(hook: FaultHook | None) -> None:
    """Call `hook(step, prefix)` at each publish step (tests kill the process there); None removes it."""
    global _fault_hook
    _fault_hook = hook


def fault_point(step: str, prefix: str) -> None:
    if _fault_hook is not None:
        _fault_hook(step, prefix)


def new_revision() -> str:
    """A unique revision name that sorts by the time it was made."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def is_report_area(prefix: str) -> bool:
    return prefix.split("/", 1)[0] in REPORT_AREAS


@contextmanager
def partition_writer(store: ObjectStore, prefix: str, manifest: dict[str, Any]) -> Iterator[Path]:
    """Stage files in a local folder, then publish them as the partition's new revision (see `publish_partition`).

    Everything written into the yielded folder becomes the partition; if the body raises, the old
    partition is left untouched.
    """
    with tempfile.TemporaryDirectory(prefix="nightshift-") as staging:
        folder = Path(staging)
        yield folder
        files = {str(path.relative_to(folder)): path for path in sorted(folder.rglob("*")) if path.is_file()}
        publish_partition(store, prefix, manifest, local=files)


def publish_partition(
    store: ObjectStore,
    prefix: str,
    manifest: dict[str, Any],
    *,
    staged: dict[str, str] | None = None,
    local: dict[str, Path] | None = None,
) -> str:
    """Publish a new revision of the partition, old or new at every instant; return the revision.

    The files (objects already in the store, `staged`: name -> key, copied on the server side, and local files,
    name -> path) go to a new revision folder that no reader knows of; then the manifest, one object replaced
    atomically, switches readers to it. In a report area the files are then copied to the partition's own folder,
    each object replaced whole, never removed. Last, revisions are pruned (every one is kept in a report area, the
    newest `DATA_REVISIONS_KEPT` elsewhere), so a reader that read the previous manifest can still finish. A crash
    before the switch leaves the previous revision current; the folder it left is pruned by the next publish.
    """
    keep = None if is_report_area(prefix) else DATA_REVISIONS_KEPT
    staged, local = staged or {}, local or {}
    previous = read_manifest(store, prefix) or {}
    revision = new_revision()
    base = f"{prefix}/{REVISION_DIR}{revision}"
    for name, key in sorted(staged.items()):
        store.copy(key, f"{base}/{name}")
        fault_point("file", prefix)
    for name, path in sorted(local.items()):
        store.put_file(f"{base}/{name}", path)
        fault_point("file", prefix)
    published = [*previous.get("revisions", [previous["revision"]] if previous.get("revision") else []), revision]
    body = {
        **manifest,
        "files": sorted([*staged, *local]),
        "revision": revision,
        "revisions": published if keep is None else published[-keep:],
        "published_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    fault_point("switch", prefix)
    store.write_bytes(f"{prefix}/{MARKER}", json.dumps(body, indent=2, sort_keys=True).encode())
    fault_point("switched", prefix)
    if keep is None:
        for name in body["files"]:
            store.copy(f"{base}/{name}", f"{prefix}/{name}")
            fault_point("copied", prefix)
    prune_revisions(store, prefix)
    return revision


def _revisions_held(store: ObjectStore, prefix: str) -> tuple[dict[str, list[str]], list[str]]:
    """The partition's revision folders (revision -> keys) and the files it holds outside them (an older layout)."""
    revisions: dict[str, list[str]] = {}
    loose = []
    for key in store.list(prefix):
        relative = key[len(prefix) + 1 :]
        head, _, rest = relative.partition("/")
        if head.startswith(REVISION_DIR) and rest:
            revisions.setdefault(head[len(REVISION_DIR) :], []).append(key)
        elif relative != MARKER:
            loose.append(key)
    return revisions, loose


def revisions(store: ObjectStore, prefix: str) -> list[str]:
    """The revisions the partition still holds, oldest first (the current one among them)."""
    return sorted(_revisions_held(store, prefix)[0])


def prune_revisions(store: ObjectStore, prefix: str) -> None:
    """Remove the revisions the manifest no longer lists (and any a crashed publish left), and older flat files."""
    manifest = read_manifest(store, prefix)
    if manifest is None or not manifest.get("revision"):
        return
    listed = set(manifest.get("revisions") or [manifest["revision"]])
    copies = {f"{prefix}/{name}" for name in manifest.get("files", [])} if is_report_area(prefix) else set()
    held, loose = _revisions_held(store, prefix)
    for name in sorted(set(held) - listed):
        store.delete_prefix(f"{prefix}/{REVISION_DIR}{name}")
        fault_point("pruned", prefix)
    for key in loose:
        if key not in copies:
            store.delete_prefix(key)


@contextmanager
def flat_partition_writer(store: ObjectStore, prefix: str, manifest: dict[str, Any]) -> Iterator[Path]:
    """Write a partition the way an upstream export does: its files under the prefix itself, the marker last."""
    with tempfile.TemporaryDirectory(prefix="nightshift-") as staging:
        folder = Path(staging)
        yield folder
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        remove_partition(store, prefix)
        for path in files:
            store.put_file(f"{prefix}/{path.relative_to(folder)}", path)
        body = {**manifest, "files": [str(path.relative_to(folder)) for path in files]}
        store.write_bytes(f"{prefix}/{MARKER}", json.dumps(body, indent=2, sort_keys=True).encode())


def remove_partition(store: ObjectStore, prefix: str) -> None:
    """Make the partition absent: the manifest goes first (readers see the old partition or none), then its files."""
    store.delete_prefix(f"{prefix}/{MARKER}")
    fault_point("switched", prefix)
    store.delete_prefix(prefix)
