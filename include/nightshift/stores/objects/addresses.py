"""Addresses both ways: the store a URI names (`file://` or `s3://`), and a browser link to one of its objects."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from nightshift.stores.objects.base import ObjectStore, StorageError
from nightshift.stores.objects.local import LocalStore
from nightshift.stores.objects.s3 import S3Store

MAX_PRESIGN_SECONDS = 7 * 24 * 3600

STORE_TYPES: dict[str, Callable[[str], ObjectStore]] = {"file": LocalStore, "s3": S3Store}


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


def presigned_url(store: ObjectStore, key: str, expires_seconds: int = 3600) -> str:
    """A link to one object for a browser: a presigned GET URL on S3, the plain file:// URL for a local store."""
    check_expiry(expires_seconds)
    if isinstance(store, S3Store):
        return store.presigned_url(key, expires_seconds)
    if isinstance(store, LocalStore):
        return store.url_for(key)
    raise StorageError(f"{store.uri}: this store cannot make links to its objects")


def check_expiry(expires_seconds: int) -> None:
    """StorageError unless a link may live that long (1 second to 7 days, what S3's SigV4 allows)."""
    if not 1 <= expires_seconds <= MAX_PRESIGN_SECONDS:
        raise StorageError(
            f"a link must expire after 1 to {MAX_PRESIGN_SECONDS} seconds (7 days), not {expires_seconds}"
        )


def signs_links(store: ObjectStore) -> bool:
    """Whether a browser needs a signed link to open this store's objects (S3); a local folder's open as they are."""
    return isinstance(store, S3Store)


def link_maker(store: ObjectStore, expires_seconds: int = 3600) -> Callable[[str], str]:
    """A function from a key to a browser link to its object, every link with the same expiry (see presigned_url)."""
    check_expiry(expires_seconds)
    return lambda key: presigned_url(store, key, expires_seconds)
