import os
import subprocess
import sys

import pytest

from nightshift.stores.objects import (
    MARKER,
    S3Store,
    StorageError,
    ensure_bucket,
    flat_partition_writer,
    is_complete,
    open_store,
    partition_file,
    partition_files,
    partition_writer,
    presigned_url,
    revisions,
    set_fault_hook,
)
from tests.manifests import published_manifest


@pytest.fixture
def store(tmp_path):
    return open_store((tmp_path / "store").as_uri())


def _publish(store, prefix: str, files: dict[str, bytes], **manifest) -> str:
    with partition_writer(store, prefix, manifest) as folder:
        for name, data in files.items():
            (folder / name).write_bytes(data)
    return published_manifest(store, prefix)["revision"]


def test_each_publish_is_a_new_revision_that_the_manifest_switches_to(store):
    prefix = "curated/m/dt=2026-10-01"
    first = _publish(store, prefix, {"a.parquet": b"one", "b.parquet": b"two"}, rows=2)
    second = _publish(store, prefix, {"c.parquet": b"three"}, rows=1)
    assert first < second
    assert partition_files(store, prefix) == [f"{prefix}/rev={second}/c.parquet"]
    manifest = published_manifest(store, prefix)
    assert manifest["rows"] == 1 and manifest["files"] == ["c.parquet"] and manifest["revisions"] == [first, second]
    assert store.read_bytes(partition_file(store, prefix, "c.parquet")) == b"three"
    assert store.exists(f"{prefix}/rev={first}/a.parquet"), "the previous revision stays for readers that started on it"
    with pytest.raises(FileNotFoundError, match=r"holds no a\.parquet"):
        partition_file(store, prefix, "a.parquet")


def test_a_data_partition_keeps_two_revisions_a_report_partition_keeps_all_and_its_current_copies(store):
    data, report = "predictions/m/dt=2026-10-01", "reports/drift/m/dt=2026-10-01"
    data_revisions = [_publish(store, data, {"x.parquet": str(n).encode()}) for n in range(4)]
    report_revisions = [_publish(store, report, {"report.html": f"<p>{n}</p>".encode()}) for n in range(4)]
    assert revisions(store, data) == data_revisions[-2:]
    assert revisions(store, report) == report_revisions
    assert store.read_bytes(f"{report}/report.html") == b"<p>3</p>"
    assert [store.read_bytes(f"{report}/rev={name}/report.html") for name in report_revisions] == [
        f"<p>{n}</p>".encode() for n in range(4)
    ]
    assert not store.exists(f"{data}/x.parquet"), "data partitions are read through the manifest only"


def test_failed_write_leaves_the_old_partition(store):
    old = _publish(store, "p/dt=1", {"old.csv": b"x"})
    with pytest.raises(RuntimeError), partition_writer(store, "p/dt=1", {}) as folder:
        (folder / "new.csv").write_bytes(b"y")
        raise RuntimeError("boom")
    assert partition_files(store, "p/dt=1") == [f"p/dt=1/rev={old}/old.csv"]


def test_a_publish_killed_before_the_switch_leaves_the_old_revision_and_the_next_publish_prunes_its_folder(store):
    prefix = "curated/m/dt=2026-10-02"
    old = _publish(store, prefix, {"a.parquet": b"old"})

    def crash(step: str, where: str) -> None:
        if step == "switch":
            raise KeyboardInterrupt

    set_fault_hook(crash)
    try:
        with pytest.raises(KeyboardInterrupt):
            _publish(store, prefix, {"a.parquet": b"new"})
    finally:
        set_fault_hook(None)
    assert len(revisions(store, prefix)) == 2
    assert [store.read_bytes(key) for key in partition_files(store, prefix)] == [b"old"]
    newest = _publish(store, prefix, {"a.parquet": b"newest"})
    assert revisions(store, prefix) == [old, newest]


def test_a_partition_in_the_older_flat_layout_is_read_and_then_replaced(store):
    prefix = "curated/m/dt=2026-10-03"
    with flat_partition_writer(store, prefix, {"rows": 1}) as folder:
        (folder / "part-00000.parquet").write_bytes(b"flat")
    assert partition_files(store, prefix) == [f"{prefix}/part-00000.parquet"]
    assert partition_file(store, prefix, "part-00000.parquet") == f"{prefix}/part-00000.parquet"
    revision = _publish(store, prefix, {"part-00000.parquet": b"revised"})
    assert store.list(prefix) == [f"{prefix}/{MARKER}", f"{prefix}/rev={revision}/part-00000.parquet"]


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
        "import sys; from nightshift.stores.objects import open_store; "
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
