"""A store in an S3 bucket (or a prefix in it) whose every failure is a StorageError naming the store and what to check.

`ensure_bucket` creates and hardens the bucket a store lives in.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlparse

from nightshift.config import OBJECT_STORE_CONN_ID
from nightshift.stores.objects.base import StorageError, content_type_for

S3_ENDPOINT_ENV = "NIGHTSHIFT_S3_ENDPOINT_URL"
_DELETE_BATCH = 1000
S3_MAX_ATTEMPTS = 4
"""Attempts per S3 call, the first included (boto3's standard retry mode, with backoff): a dead server fails fast."""
S3_CONNECT_TIMEOUT_SECONDS = 5
S3_READ_TIMEOUT_SECONDS = 60


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


def ensure_bucket(uri: str) -> dict[str, Any]:
    """Create the bucket of an `s3://` URI if missing, block public access and turn on default encryption.

    Idempotent. Settings the server does not implement (some S3-compatible servers) are skipped and listed
    under "not_supported"; the returned dict says what was applied.
    """
    store = S3Store(uri)
    report: dict[str, Any] = {
        "bucket": store.bucket,
        "created": _create_bucket_if_missing(store),
        "public_access_block": False,
        "encryption": False,
        "not_supported": {},
    }
    _apply_bucket_settings(store, report)
    return report


def _create_bucket_if_missing(store: S3Store) -> bool:
    """Create the store's bucket (in the client's region) unless it exists; True when this call created it."""
    from botocore.exceptions import ClientError

    client = store.client
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
                return True
            except ClientError as race:
                if _error_code(race) != "BucketAlreadyOwnedByYou":
                    raise
    return False


def _apply_bucket_settings(store: S3Store, report: dict[str, Any]) -> None:
    """Block public access and turn on default encryption, recording in `report` what was applied or not supported."""
    from botocore.exceptions import ClientError

    client = store.client
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
