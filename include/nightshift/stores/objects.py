"""Object storage behind one interface: a local folder (`file://`) or S3 (`s3://`), chosen by URI.

A partition is a key prefix whose `_SUCCESS` manifest names its current revision: a folder `rev=<revision>/` of
files written before the manifest switched to it. Readers go through the manifest, so at every instant they see the
previous complete revision or the new one, never a mix and never a gap; a partition without a manifest is absent.
Drops and label drops arrive in the upstream layout (files beside the marker) and are read as they are.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, Protocol
from urllib.parse import urlparse

from nightshift.config import OBJECT_STORE_CONN_ID

MARKER = "_SUCCESS"
REVISION_DIR = "rev="
REPORT_AREAS = ("reports", "validation", "quarantine")
"""Partitions people open by address: every revision is kept (the night's history) and the current revision's files
are also copied to the partition's own folder, under the names the README lists."""
DATA_REVISIONS_KEPT = 2
"""Revisions any other partition keeps: the current one and the one before it, for readers that started on it."""
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
}
S3_ENDPOINT_ENV = "NIGHTSHIFT_S3_ENDPOINT_URL"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_DELETE_BATCH = 1000
S3_MAX_ATTEMPTS = 4
"""Attempts per S3 call, the first included (boto3's standard retry mode, with backoff): a dead server fails fast."""
S3_CONNECT_TIMEOUT_SECONDS = 5
S3_READ_TIMEOUT_SECONDS = 60


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


_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "Forbidden", "403"}
_MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}
_NOT_SUPPORTED_CODES = {
    "NotImplemented",
    "NotImplementedError",
    "MethodNotAllowed",
    "UnsupportedOperation",
    "XNotImplemented",
}


def _configured_endpoint() -> str | None:
    """The S3 endpoint the environment asks for: NIGHTSHIFT_S3_ENDPOINT_URL wins over boto3's own variables."""
    for name in (S3_ENDPOINT_ENV, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_status(exc: Any) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


class S3Store:
    """An S3 bucket (or a prefix in it), addressed as `s3://bucket/optional/prefix`; keys are relative to the prefix.

    The client is built lazily from the environment: the standard AWS variables and credential chain, plus
    NIGHTSHIFT_S3_ENDPOINT_URL (wins over AWS_ENDPOINT_URL) for MinIO and other S3-compatible servers, which
    are addressed path-style.
    """

    def __init__(self, uri: str) -> None:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StorageError(f"object store URI {uri!r}: expected s3://bucket/optional/prefix")
        self.bucket = parsed.netloc
        self.prefix = "/".join(part for part in parsed.path.split("/") if part not in ("", "."))
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        configured = _configured_endpoint()
        config = Config(
            signature_version="s3v4",
            retries={"total_max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"},
            connect_timeout=S3_CONNECT_TIMEOUT_SECONDS,
            read_timeout=S3_READ_TIMEOUT_SECONDS,
            s3={"addressing_style": "path"} if configured else None,
        )
        try:
            return boto3.session.Session().client(
                "s3", endpoint_url=os.environ.get(S3_ENDPOINT_ENV, "").strip() or None, config=config
            )
        except ValueError as exc:
            raise StorageError(
                f"{self.uri}: S3 endpoint {configured!r} is not usable ({exc}); set {S3_ENDPOINT_ENV} or "
                "AWS_ENDPOINT_URL to a URL such as http://minio:9000"
            ) from exc

    @property
    def endpoint(self) -> str:
        if self._client is not None:
            return str(self._client.meta.endpoint_url)
        return _configured_endpoint() or "the default AWS endpoint"

    def _full(self, key: str) -> str:
        parts = [part for part in key.split("/") if part not in ("", ".")]
        if key.startswith("/") or ".." in parts:
            raise StorageError(f"{self.uri}: key {key!r} points outside the store")
        return "/".join([self.prefix, *parts] if self.prefix else parts)

    def _object_key(self, key: str) -> str:
        full = self._full(key)
        if full == self.prefix:
            raise StorageError(f"{self.uri}: key {key!r} does not name an object")
        return full

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def _fail(self, exc: Any, action: str, key: str | None) -> NoReturn:
        """Raise the StorageError (or FileNotFoundError) that explains a botocore ClientError."""
        code = _error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or str(exc)
        where = self.url_for(key) if key is not None else f"s3://{self.bucket}"
        if key is not None and code in _MISSING_KEY_CODES:
            raise FileNotFoundError(f"{where}: no such object") from None
        if code in ("NoSuchBucket",) or (key is None and code in ("404", "NotFound")):
            raise StorageError(
                f"bucket {self.bucket!r} does not exist at S3 endpoint {self.endpoint} (store {self.uri}); "
                "create it (nightshift.stores.objects.ensure_bucket) or fix the bucket in NIGHTSHIFT_STORE_URI"
            ) from exc
        if code in _CREDENTIAL_CODES:
            raise StorageError(
                f"the S3 endpoint {self.endpoint} rejected the credentials for s3://{self.bucket} ({code}: {message}); "
                "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) or the "
                f"{OBJECT_STORE_CONN_ID} connection"
            ) from exc
        if code in _DENIED_CODES:
            raise StorageError(
                f"access denied: cannot {action} {where} at S3 endpoint {self.endpoint} ({code}: {message}); check "
                "that these credentials' IAM or bucket policy allow it"
            ) from exc
        if code == "BucketAlreadyExists":
            raise StorageError(
                f"bucket {self.bucket!r} belongs to another account; choose another bucket in NIGHTSHIFT_STORE_URI"
            ) from exc
        raise StorageError(
            f"cannot {action} {where} at S3 endpoint {self.endpoint}: {code or _error_status(exc)}: {message}"
        ) from exc

    def _gone(self, action: str, where: str, what: str, exc: Exception) -> StorageError:
        """The error for a server that cannot be reached or stopped answering: the call, the object, no traceback."""
        reason = " ".join(str(exc).split())
        return StorageError(
            f"cannot {action} {where}: S3 endpoint {self.endpoint} {what} ({reason}; tried {S3_MAX_ATTEMPTS} times); "
            f"check that the server is up and {S3_ENDPOINT_ENV} / AWS_ENDPOINT_URL, then run the step again"
        )

    @contextmanager
    def _translated(self, action: str, key: str | None = None, prefix: str | None = None) -> Iterator[None]:
        """Turn botocore failures inside the block into StorageError / FileNotFoundError naming the store.

        `key` is the object the call is about (None for the bucket); `prefix`, the folder a listing is about.
        """
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        where = self.url_for(key if key is not None else prefix or "")
        try:
            yield
        except ClientError as exc:
            self._fail(exc, action, key)
        except S3UploadFailedError as exc:
            if isinstance(exc.__context__, ClientError):
                self._fail(exc.__context__, action, key)
            raise StorageError(f"cannot {action} {where}: {exc}") from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise StorageError(
                f"no credentials for s3://{self.bucket} ({exc}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                f"or the {OBJECT_STORE_CONN_ID} connection"
            ) from exc
        except (BotoConnectionError, ConnectionClosedError) as exc:
            raise self._gone(action, where, "is unreachable", exc) from None
        except ReadTimeoutError as exc:
            raise self._gone(action, where, "did not answer in time", exc) from None
        except BotoCoreError as exc:
            raise self._gone(action, where, "failed", exc) from None

    def read_bytes(self, key: str) -> bytes:
        full = self._object_key(key)
        with self._translated("read", key):
            return bytes(self.client.get_object(Bucket=self.bucket, Key=full)["Body"].read())

    def write_bytes(self, key: str, data: bytes) -> None:
        full = self._object_key(key)
        with self._translated("write", key):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType=content_type_for(key))

    def put_file(self, key: str, local_path: Path) -> None:
        full = self._object_key(key)
        with self._translated("upload", key):
            self.client.upload_file(
                str(local_path), self.bucket, full, ExtraArgs={"ContentType": content_type_for(key)}
            )

    def get_file(self, key: str, local_path: Path) -> Path:
        full = self._object_key(key)
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = local_path.with_name(f".{local_path.name}.part")
        try:
            with self._translated("download", key):
                body = self.client.get_object(Bucket=self.bucket, Key=full)["Body"]
                with tmp.open("wb") as handle:
                    for chunk in body.iter_chunks(chunk_size=1024 * 1024):
                        handle.write(chunk)
            tmp.replace(local_path)
        finally:
            tmp.unlink(missing_ok=True)
        return local_path

    def copy(self, source_key: str, key: str) -> None:
        """Copy within the bucket on the server side (multipart for large objects); nothing passes through here."""
        source, full = self._object_key(source_key), self._object_key(key)
        with self._translated("copy", source_key):
            self.client.copy(
                {"Bucket": self.bucket, "Key": source},
                self.bucket,
                full,
                ExtraArgs={"ContentType": content_type_for(key), "MetadataDirective": "REPLACE"},
            )

    def exists(self, key: str) -> bool:
        full = self._object_key(key)
        with self._translated("look up", prefix=key):
            found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=full, MaxKeys=1).get("Contents", [])
        return bool(found) and found[0]["Key"] == full

    def _keys_below(self, full: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{full}/" if full else ""):
            for item in page.get("Contents", []):
                yield item["Key"]

    def list(self, prefix: str) -> list[str]:
        full = self._full(prefix)
        with self._translated("list", prefix=prefix):
            keys = [
                self._relative(name)
                for name in self._keys_below(full)
                if not name.endswith("/") and not name.rsplit("/", 1)[-1].startswith(".")
            ]
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> None:
        full = self._full(prefix)
        with self._translated("delete", prefix=prefix):
            doomed = [*([full] if full else []), *self._keys_below(full)]
            for start in range(0, len(doomed), _DELETE_BATCH):
                batch = doomed[start : start + _DELETE_BATCH]
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True}
                )
                errors = answer.get("Errors", [])
                if errors:
                    shown = ", ".join(f"{error.get('Key')}: {error.get('Code')}" for error in errors[:5])
                    raise StorageError(
                        f"cannot delete {len(errors)} object(s) under s3://{self.bucket}/{full} at S3 endpoint "
                        f"{self.endpoint}: {shown}"
                    )

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        """A GET link to one object that works without credentials until it expires."""
        full = self._object_key(key)
        with self._translated("sign a link to", key):
            return str(
                self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=expires_seconds
                )
            )


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


def ensure_bucket(uri: str) -> dict[str, Any]:
    """Create the bucket of an `s3://` URI if missing, block public access and turn on default encryption.

    Idempotent. Settings the server does not implement (some S3-compatible servers) are skipped and listed
    under "not_supported"; the returned dict says what was applied.
    """
    from botocore.exceptions import ClientError

    store = S3Store(uri)
    client = store.client
    report: dict[str, Any] = {
        "bucket": store.bucket,
        "created": False,
        "public_access_block": False,
        "encryption": False,
        "not_supported": {},
    }
    with store._translated("create the bucket"):
        try:
            client.head_bucket(Bucket=store.bucket)
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            region = client.meta.region_name
            options: dict[str, Any] = {"Bucket": store.bucket}
            if region and region not in ("us-east-1", "aws-global"):
                options["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                client.create_bucket(**options)
                report["created"] = True
            except ClientError as race:
                if _error_code(race) != "BucketAlreadyOwnedByYou":
                    raise
    settings_to_apply: dict[str, Callable[[], Any]] = {
        "public_access_block": lambda: client.put_public_access_block(
            Bucket=store.bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        ),
        "encryption": lambda: client.put_bucket_encryption(
            Bucket=store.bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        ),
    }
    for name, apply in settings_to_apply.items():
        with store._translated(f"set {name.replace('_', ' ')} on"):
            try:
                apply()
                report[name] = True
            except ClientError as exc:
                if _error_code(exc) not in _NOT_SUPPORTED_CODES and _error_status(exc) != 501:
                    raise
                report["not_supported"][name] = (
                    f"{_error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
                )
    return report


def presigned_url(store: ObjectStore, key: str, expires_seconds: int = 3600) -> str:
    """A link to one object for a browser: a presigned GET URL on S3, the plain file:// URL for a local store."""
    if not 1 <= expires_seconds <= MAX_PRESIGN_SECONDS:
        raise StorageError(
            f"a link must expire after 1 to {MAX_PRESIGN_SECONDS} seconds (7 days), not {expires_seconds}"
        )
    if isinstance(store, S3Store):
        return store.presigned_url(key, expires_seconds)
    if isinstance(store, LocalStore):
        return store.url_for(key)
    raise StorageError(f"{store.uri}: this store cannot make links to its objects")


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


def write_json(store: ObjectStore, key: str, payload: Any) -> None:
    store.write_bytes(key, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


def read_json(store: ObjectStore, key: str) -> Any:
    return json.loads(store.read_bytes(key))
