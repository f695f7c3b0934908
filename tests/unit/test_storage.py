import os
import subprocess
import sys

import pytest

from nightshift.storage import (
    MARKER,
    S3Store,
    StorageError,
    ensure_bucket,
    is_complete,
    open_store,
    partition_files,
    partition_writer,
    presigned_url,
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


def test_unknown_scheme_lists_s3_too():
    with pytest.raises(StorageError, match=r"use one of file://, s3://"):
        open_store("gopher://host/x")


@pytest.mark.parametrize(
    ("uri", "key", "expected_uri", "expected_url"),
    [
        ("s3://bucket/a/b/", "x/y.json", "s3://bucket/a/b", "s3://bucket/a/b/x/y.json"),
        ("s3://bucket", "x/y.json", "s3://bucket", "s3://bucket/x/y.json"),
        ("s3://bucket/", "x//./y.json", "s3://bucket", "s3://bucket/x/y.json"),
        ("s3://bucket//a//b", "y.json", "s3://bucket/a/b", "s3://bucket/a/b/y.json"),
    ],
)
def test_s3_uris_and_urls(uri, key, expected_uri, expected_url):
    store = open_store(uri)
    assert isinstance(store, S3Store)
    assert store.uri == expected_uri
    assert store.url_for(key) == expected_url


def test_an_s3_uri_needs_a_bucket():
    with pytest.raises(StorageError, match="expected s3://bucket/optional/prefix"):
        open_store("s3:///prefix-only")


@pytest.mark.parametrize("key", ["../escape.txt", "a/../../b", "/absolute"])
def test_s3_keys_cannot_escape_the_prefix(key):
    with pytest.raises(StorageError, match="outside the store"):
        open_store("s3://bucket/prefix").url_for(key)


def test_opening_an_s3_store_neither_imports_boto3_nor_connects():
    code = (
        "import sys; from nightshift.storage import open_store; "
        "store = open_store('s3://bucket/p'); store.url_for('k'); print('boto3' in sys.modules)"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert answer.stdout.strip() == "False"


def test_a_link_to_a_local_object_is_its_file_url(store):
    store.write_bytes("reports/index.html", b"<html></html>")
    assert presigned_url(store, "reports/index.html", 60) == store.url_for("reports/index.html")
    assert presigned_url(store, "reports/index.html", 60).startswith("file://")


def _stubbed(monkeypatch, uri="s3://bucket/prefix"):
    """An S3Store whose client answers from a botocore Stubber instead of the network."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3")
    monkeypatch.setattr(S3Store, "_make_client", lambda self: client)
    stubber = Stubber(client)
    stubber.activate()
    return S3Store(uri), stubber


@pytest.mark.parametrize(
    ("code", "status", "error", "message"),
    [
        ("AccessDenied", 403, StorageError, r"access denied: cannot read s3://bucket/prefix/k\.json"),
        ("InvalidAccessKeyId", 403, StorageError, r"rejected the credentials for s3://bucket.*AWS_ACCESS_KEY_ID"),
        ("NoSuchBucket", 404, StorageError, r"bucket 'bucket' does not exist"),
        ("NoSuchKey", 404, FileNotFoundError, r"s3://bucket/prefix/k\.json: no such object"),
        ("SlowDown", 503, StorageError, r"cannot read s3://bucket/prefix/k\.json at S3 endpoint .*SlowDown"),
    ],
)
def test_s3_errors_are_explained(monkeypatch, code, status, error, message):
    store, stubber = _stubbed(monkeypatch)
    stubber.add_client_error("get_object", service_error_code=code, http_status_code=status)
    with pytest.raises(error, match=message):
        store.read_bytes("k.json")


def test_ensure_bucket_reports_settings_the_server_does_not_implement(monkeypatch):
    _, stubber = _stubbed(monkeypatch, "s3://bucket")
    stubber.add_response("head_bucket", {}, {"Bucket": "bucket"})
    stubber.add_client_error(
        "put_public_access_block", service_error_code="NotImplemented", service_message="nope", http_status_code=501
    )
    stubber.add_response("put_bucket_encryption", {})
    report = ensure_bucket("s3://bucket")
    stubber.assert_no_pending_responses()
    assert report == {
        "bucket": "bucket",
        "created": False,
        "public_access_block": False,
        "encryption": True,
        "not_supported": {"public_access_block": "NotImplemented: nope"},
    }


def test_ensure_bucket_does_not_hide_a_refusal(monkeypatch):
    _, stubber = _stubbed(monkeypatch, "s3://bucket")
    stubber.add_response("head_bucket", {}, {"Bucket": "bucket"})
    stubber.add_client_error("put_public_access_block", service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(StorageError, match="access denied: cannot set public access block on s3://bucket"):
        ensure_bucket("s3://bucket")


def test_delete_prefix_reports_objects_it_could_not_delete(monkeypatch):
    store, stubber = _stubbed(monkeypatch)
    stubber.add_response("list_objects_v2", {"Contents": [{"Key": "prefix/p/a.csv"}], "IsTruncated": False})
    stubber.add_response(
        "delete_objects", {"Errors": [{"Key": "prefix/p/a.csv", "Code": "AccessDenied", "Message": "no"}]}
    )
    with pytest.raises(StorageError, match=r"cannot delete 1 object\(s\) under s3://bucket/prefix/p.*AccessDenied"):
        store.delete_prefix("p")
