"""The manifest of a published partition, for tests that need it to be there."""

from __future__ import annotations

from typing import Any

from nightshift.stores.objects import ObjectStore, read_manifest


def published_manifest(store: ObjectStore, prefix: str) -> dict[str, Any]:
    """The manifest under `prefix`; fails the test when there is none."""
    manifest = read_manifest(store, prefix)
    assert manifest is not None, f"no manifest under {prefix}"
    return manifest
