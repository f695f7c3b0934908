"""The object-store contract on a local folder and on a real S3 API (moto's server), plus S3-only behaviour."""

from __future__ import annotations

import re
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from nightshift import cli
from nightshift.stores.objects import (
    MARKER,
    ObjectStore,
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

PARTITION = "curated/credit_risk/dt=2026-10-01"


@pytest.fixture(params=["file", "s3"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return (tmp_path / "store").as_uri()
    return str(request.getfixturevalue("s3_store_uri"))


@pytest.fixture
def store(store_uri: str) -> ObjectStore:
    return open_store(store_uri)


def fetch(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read(), answer.headers.get("Content-Type", "")


class RecordingStore:
    """Passes every call to a real store and notes the writes and deletes in order."""

    def __init__(self, inner: ObjectStore, watched: str) -> None:
        self.inner = inner
        self.uri = inner.uri
        self.watched = watched
        self.calls: list[tuple[str, str]] = []
        self.visible_while_writing: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_file(self, key: str, local_path: Path) -> None:
        self.inner.put_file(key, local_path)
        self.calls.append(("put", key))
        self.visible_while_writing.append(partition_files(self.inner, self.watched))

    def write_bytes(self, key: str, data: bytes) -> None:
        self.inner.write_bytes(key, data)
        self.calls.append(("write", key))

    def delete_prefix(self, prefix: str) -> None:
        self.inner.delete_prefix(prefix)
        self.calls.append(("delete", prefix))


# The contract, on both stores.


def test_bytes_round_trip_and_overwrite(store: ObjectStore) -> None:
    store.write_bytes("a/b/data.bin", b"\x00first")
    assert store.read_bytes("a/b/data.bin") == b"\x00first"
    store.write_bytes("a/b/data.bin", b"second")
    assert store.read_bytes("a/b/data.bin") == b"second"


def test_list_is_sorted_relative_to_the_root_and_skips_hidden_names(store: ObjectStore) -> None:
    for key in ("a/b/2.csv", "a/b/1.csv", "a/b/c/3.json", "a/b/.hidden", "a/bc/x.csv", "top.json"):
        store.write_bytes(key, b"x")
    assert store.list("a/b") == ["a/b/1.csv", "a/b/2.csv", "a/b/c/3.json"]
    assert store.list("a/b/") == ["a/b/1.csv", "a/b/2.csv", "a/b/c/3.json"]
    assert store.list("a") == ["a/b/1.csv", "a/b/2.csv", "a/b/c/3.json", "a/bc/x.csv"]
    assert store.list("") == ["a/b/1.csv", "a/b/2.csv", "a/b/c/3.json", "a/bc/x.csv", "top.json"]
    assert store.list("nothing/here") == []
    assert store.list("top.json") == []


def test_exists_is_true_for_objects_only(store: ObjectStore) -> None:
    store.write_bytes("p/dt=1/data.csv", b"x")
    assert store.exists("p/dt=1/data.csv")
    assert not store.exists("p/dt=1")
    assert not store.exists("p/dt=1/data")
    assert not store.exists("p/dt=1/data.csv.gz")


def test_delete_prefix_removes_the_folder_and_the_exact_key_but_not_siblings(store: ObjectStore) -> None:
    for key in ("p/x/1.csv", "p/x/sub/2.csv", "p/xy/3.csv", "p/x.json"):
        store.write_bytes(key, b"x")
    store.delete_prefix("p/x")
    assert store.list("p") == ["p/x.json", "p/xy/3.csv"]
    store.delete_prefix("p/x.json")
    assert store.list("p") == ["p/xy/3.csv"]
    store.delete_prefix("p/never-written")
    assert store.list("p") == ["p/xy/3.csv"]


def test_put_file_and_get_file_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "upload.parquet"
    payload = bytes(range(256)) * 40
    source.write_bytes(payload)
    store.put_file("curated/m/dt=1/part.parquet", source)
    assert store.read_bytes("curated/m/dt=1/part.parquet") == payload
    fetched = store.get_file("curated/m/dt=1/part.parquet", tmp_path / "download" / "part.parquet")
    assert fetched.read_bytes() == payload


def test_a_missing_object_raises_file_not_found_naming_its_url(store: ObjectStore, tmp_path: Path) -> None:
    url = store.url_for("reports/none.json")
    assert url.startswith(store.uri)
    with pytest.raises(FileNotFoundError, match=re.escape(url)):
        store.read_bytes("reports/none.json")
    with pytest.raises(FileNotFoundError, match=re.escape(url)):
        store.get_file("reports/none.json", tmp_path / "none.json")
    assert not (tmp_path / "none.json").exists()


def test_keys_cannot_escape_the_store(store: ObjectStore) -> None:
    with pytest.raises(StorageError, match="outside the store"):
        store.write_bytes("../escape.txt", b"x")


def _current(store: ObjectStore, prefix: str = PARTITION) -> str:
    manifest = read_manifest(store, prefix)
    assert manifest is not None
    return f"{prefix}/rev={manifest['revision']}"


def test_partition_is_replaced_whole(store: ObjectStore) -> None:
    with partition_writer(store, PARTITION, {"rows": 2}) as folder:
        (folder / "a.parquet").write_bytes(b"one")
        (folder / "nested").mkdir()
        (folder / "nested" / "b.parquet").write_bytes(b"two")
    first = _current(store)
    assert partition_files(store, PARTITION) == [f"{first}/a.parquet", f"{first}/nested/b.parquet"]
    with partition_writer(store, PARTITION, {"rows": 1}) as folder:
        (folder / "c.parquet").write_bytes(b"three")
    second = _current(store)
    assert partition_files(store, PARTITION) == [f"{second}/c.parquet"]
    manifest = read_manifest(store, PARTITION)
    assert manifest is not None and manifest["rows"] == 1 and manifest["files"] == ["c.parquet"]
    with partition_writer(store, PARTITION, {"rows": 1}) as folder:
        (folder / "d.parquet").write_bytes(b"four")
    third = _current(store)
    assert store.list(PARTITION) == [f"{PARTITION}/{MARKER}", f"{second}/c.parquet", f"{third}/d.parquet"]


def test_readers_see_the_old_revision_until_the_manifest_switches(store: ObjectStore) -> None:
    with partition_writer(store, PARTITION, {"rows": 1}) as folder:
        (folder / "old.parquet").write_bytes(b"old")
    old = partition_files(store, PARTITION)
    recorder = RecordingStore(store, PARTITION)
    with partition_writer(recorder, PARTITION, {"rows": 2}) as folder:
        (folder / "a.parquet").write_bytes(b"a")
        (folder / "b.parquet").write_bytes(b"b")
    new = _current(store)
    assert recorder.calls == [
        ("put", f"{new}/a.parquet"),
        ("put", f"{new}/b.parquet"),
        ("write", f"{PARTITION}/{MARKER}"),
    ]
    assert recorder.visible_while_writing == [old, old]
    assert partition_files(store, PARTITION) == [f"{new}/a.parquet", f"{new}/b.parquet"]


def test_a_report_partition_keeps_every_revision_and_a_current_copy(store: ObjectStore) -> None:
    prefix = "reports/drift/credit_risk/dt=2026-10-03"
    for n in range(3):
        with partition_writer(store, prefix, {"n": n}) as folder:
            (folder / "report.html").write_text(f"<p>{n}</p>")
    manifest = read_manifest(store, prefix)
    assert manifest is not None and len(manifest["revisions"]) == 3
    assert store.read_bytes(f"{prefix}/report.html") == b"<p>2</p>"
    assert [store.read_bytes(f"{prefix}/rev={name}/report.html") for name in manifest["revisions"]] == [
        b"<p>0</p>",
        b"<p>1</p>",
        b"<p>2</p>",
    ]


def test_a_partition_without_its_manifest_is_invisible(store: ObjectStore) -> None:
    store.write_bytes("p/dt=2/data.csv", b"half written")
    assert not is_complete(store, "p/dt=2")
    assert partition_files(store, "p/dt=2") == []
    assert read_manifest(store, "p/dt=2") is None
    store.write_bytes(f"p/dt=2/{MARKER}", b"{}")
    assert partition_files(store, "p/dt=2", ".csv") == ["p/dt=2/data.csv"]


def test_a_failed_write_leaves_the_old_partition(store: ObjectStore) -> None:
    with partition_writer(store, PARTITION, {}) as folder:
        (folder / "old.csv").write_bytes(b"x")
    with pytest.raises(RuntimeError, match="boom"), partition_writer(store, PARTITION, {}) as folder:
        (folder / "new.csv").write_bytes(b"y")
        raise RuntimeError("boom")
    assert [store.read_bytes(key) for key in partition_files(store, PARTITION)] == [b"x"]


def test_a_link_to_an_object_opens_it(store: ObjectStore) -> None:
    page = b"<html><body>drift index</body></html>"
    store.write_bytes("reports/drift/credit_risk/index.html", page)
    link = presigned_url(store, "reports/drift/credit_risk/index.html", 600)
    body, content_type = fetch(link)
    assert body == page
    assert content_type.startswith("text/html")


@pytest.mark.parametrize("expires", [0, -5, 7 * 24 * 3600 + 1])
def test_a_link_must_expire_within_seven_days(store: ObjectStore, expires: int) -> None:
    store.write_bytes("r/index.html", b"x")
    with pytest.raises(StorageError, match="1 to 604800 seconds"):
        presigned_url(store, "r/index.html", expires)


def test_report_link_prints_working_links_for_the_index_and_a_night(
    store_uri: str, store: ObjectStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Locally the index itself; on S3 a shared copy of it (tests/integration/test_report_sharing.py has its links)."""
    monkeypatch.setenv("NIGHTSHIFT_STORE_URI", store_uri)
    store.write_bytes("reports/drift/credit_risk/index.html", b"<html>index</html>")
    with partition_writer(store, "reports/drift/credit_risk/dt=2026-10-03", {"dt": "2026-10-03"}) as folder:
        (folder / "report.html").write_text("<html>night of 2026-10-03</html>")
        (folder / "summary.json").write_text('{"model": "credit_risk", "dt": "2026-10-03", "skipped": "test"}')

    assert cli.main(["report-link", "--model", "credit_risk", "--expires", "120"]) == 0
    link = capsys.readouterr().out.strip()
    body, content_type = fetch(link)
    if store_uri.startswith("file:"):
        assert body == b"<html>index</html>"
    else:
        assert b"Drift history: credit_risk" in body and b"2026-10-03" in body
    assert content_type.startswith("text/html")

    assert cli.main(["report-link", "--model", "credit_risk", "--night", "2026-10-03"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == ["drift report", "drift summary"]
    assert fetch(lines[0].split(": ", 1)[1])[0] == b"<html>night of 2026-10-03</html>"


def test_report_link_explains_what_is_missing(
    store_uri: str, store: ObjectStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NIGHTSHIFT_STORE_URI", store_uri)
    assert cli.main(["report-link", "--model", "credit_risk"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "does not exist yet" in captured.err
    assert store.url_for("reports/drift/credit_risk/index.html") in captured.err

    store.write_bytes("reports/drift/credit_risk/dt=2026-10-04/report.html", b"half written")
    assert cli.main(["report-link", "--model", "credit_risk", "--night", "2026-10-04"]) == 1
    assert "no drift report for 'credit_risk' on 2026-10-04" in capsys.readouterr().err


# S3 only.


def test_objects_live_under_the_prefix_of_the_bucket(s3_store_uri: str, s3_admin: Any) -> None:
    store = open_store(s3_store_uri)
    assert isinstance(store, S3Store)
    store.write_bytes("curated/x.csv", b"1")
    assert store.url_for("curated/x.csv") == f"{s3_store_uri}/curated/x.csv"
    listed = s3_admin.list_objects_v2(Bucket=store.bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["nightshift/curated/x.csv"]


def test_objects_carry_the_content_type_of_their_name(s3_store_uri: str, s3_admin: Any, tmp_path: Path) -> None:
    store = open_store(s3_store_uri)
    bucket = urlparse(s3_store_uri).netloc
    (tmp_path / "report.html").write_text("<html></html>")
    (tmp_path / "report.json").write_text("{}")
    store.put_file("r/put/report.html", tmp_path / "report.html")
    store.put_file("r/put/report.json", tmp_path / "report.json")
    store.write_bytes("r/write/index.html", b"<html></html>")
    store.write_bytes("r/write/latest.json", b"{}")
    store.write_bytes("r/write/part.parquet", b"PAR1")
    store.write_bytes("r/write/model.bin", b"\x00")
    expected = {
        "r/put/report.html": "text/html; charset=utf-8",
        "r/put/report.json": "application/json",
        "r/write/index.html": "text/html; charset=utf-8",
        "r/write/latest.json": "application/json",
        "r/write/part.parquet": "application/vnd.apache.parquet",
        "r/write/model.bin": "application/octet-stream",
    }
    stored = {key: s3_admin.head_object(Bucket=bucket, Key=f"nightshift/{key}")["ContentType"] for key in expected}
    assert stored == expected


def test_a_large_file_is_uploaded_in_parts_and_comes_back_whole(s3_store_uri: str, tmp_path: Path) -> None:
    store = open_store(s3_store_uri)
    source = tmp_path / "big.parquet"
    payload = uuid.uuid4().bytes * (10 * 1024 * 1024 // 16)
    source.write_bytes(payload)
    store.put_file("big/big.parquet", source)
    assert store.get_file("big/big.parquet", tmp_path / "back.parquet").read_bytes() == payload


def test_listing_and_deleting_go_past_one_page_of_a_thousand(s3_store_uri: str, s3_admin: Any) -> None:
    store = open_store(s3_store_uri)
    bucket = urlparse(s3_store_uri).netloc
    keys = [f"many/{index:04d}.csv" for index in range(1005)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3_admin.put_object(Bucket=bucket, Key=f"nightshift/{key}", Body=b"x"), keys))
    store.write_bytes("many-kept/1.csv", b"x")
    assert store.list("many") == keys
    store.delete_prefix("many")
    assert store.list("many") == []
    assert store.list("") == ["many-kept/1.csv"]


def test_ensure_bucket_is_idempotent_and_locks_the_bucket_down(s3_store_uri: str, s3_admin: Any) -> None:
    bucket = f"nightshift-{uuid.uuid4().hex[:12]}"
    first = ensure_bucket(f"s3://{bucket}/some/prefix")
    second = ensure_bucket(f"s3://{bucket}")
    assert first == {
        "bucket": bucket,
        "created": True,
        "public_access_block": True,
        "encryption": True,
        "not_supported": {},
    }
    assert second == {**first, "created": False}
    assert s3_admin.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    rules = s3_admin.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert [rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for rule in rules] == ["AES256"]
    assert s3_admin.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    store = open_store(f"s3://{bucket}/p")
    store.write_bytes("x.json", b"{}")
    assert s3_admin.head_object(Bucket=bucket, Key="p/x.json")["ServerSideEncryption"] == "AES256"


def test_ensure_bucket_creates_outside_us_east_1_with_a_location_constraint(
    s3_store_uri: str, s3_admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    bucket = f"nightshift-{uuid.uuid4().hex[:12]}"
    assert ensure_bucket(f"s3://{bucket}")["created"] is True
    assert s3_admin.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"


def test_a_presigned_link_is_path_style_sigv4_and_expires_as_asked(s3_store_uri: str, s3_server: str) -> None:
    store = open_store(s3_store_uri)
    bucket = urlparse(s3_store_uri).netloc
    store.write_bytes("reports/drift/credit_risk/index.html", b"<html></html>")
    link = presigned_url(store, "reports/drift/credit_risk/index.html", 900)
    assert link.startswith(f"{s3_server}/{bucket}/nightshift/reports/drift/credit_risk/index.html?")
    query = parse_qs(urlparse(link).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["900"]
    assert "X-Amz-Signature" in query


def test_a_custom_endpoint_is_addressed_path_style_even_if_aws_config_says_virtual(
    s3_store_uri: str, s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[default]\ns3 =\n    addressing_style = virtual\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    by_name = s3_server.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("NIGHTSHIFT_S3_ENDPOINT_URL", by_name)
    store = open_store(s3_store_uri)
    bucket = urlparse(s3_store_uri).netloc
    assert presigned_url(store, "k.json", 60).startswith(f"{by_name}/{bucket}/nightshift/k.json?")


def test_nightshift_endpoint_wins_over_aws_endpoint_url(
    s3_store_uri: str, closed_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed_endpoint)
    store = open_store(s3_store_uri)
    store.write_bytes("k.json", b"{}")
    assert store.read_bytes("k.json") == b"{}"


def test_aws_endpoint_url_alone_is_honoured(s3_store_uri: str, s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NIGHTSHIFT_S3_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    store = open_store(s3_store_uri)
    store.write_bytes("k.json", b"{}")
    assert store.read_bytes("k.json") == b"{}"
    assert presigned_url(store, "k.json", 60).startswith(f"{s3_server}/{urlparse(s3_store_uri).netloc}/nightshift/")


def test_an_unreachable_endpoint_fails_fast_and_names_it(
    s3_store_uri: str, closed_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIGHTSHIFT_S3_ENDPOINT_URL", closed_endpoint)
    store = open_store(s3_store_uri)
    started = time.monotonic()
    with pytest.raises(StorageError, match=rf"S3 endpoint {re.escape(closed_endpoint)}/? is unreachable") as caught:
        store.read_bytes("anything.json")
    assert time.monotonic() - started < 10
    assert "NIGHTSHIFT_S3_ENDPOINT_URL" in str(caught.value)


def test_an_endpoint_that_is_not_a_url_is_named(s3_store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTSHIFT_S3_ENDPOINT_URL", "minio:9000")
    with pytest.raises(StorageError, match="S3 endpoint 'minio:9000' is not usable"):
        open_store(s3_store_uri).exists("x")


def test_missing_credentials_are_explained(s3_store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    bucket = urlparse(s3_store_uri).netloc
    with pytest.raises(StorageError, match=rf"no credentials for s3://{bucket}.*AWS_ACCESS_KEY_ID"):
        open_store(s3_store_uri).write_bytes("x.json", b"{}")
    with pytest.raises(StorageError, match="no credentials"):
        presigned_url(open_store(s3_store_uri), "x.json", 60)


def test_a_missing_bucket_is_named(s3_store_uri: str) -> None:
    store = open_store("s3://nightshift-no-such-bucket/p")
    for action in (
        lambda: store.write_bytes("x.json", b"{}"),
        lambda: store.read_bytes("x.json"),
        lambda: store.exists("x.json"),
        lambda: store.list(""),
        lambda: store.delete_prefix("x"),
    ):
        with pytest.raises(StorageError, match="bucket 'nightshift-no-such-bucket' does not exist"):
            action()


def test_denied_access_and_rejected_keys_are_explained(locked_bucket: Any, aws_env: pytest.MonkeyPatch) -> None:
    aws_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws_env.setenv("NIGHTSHIFT_S3_ENDPOINT_URL", locked_bucket.endpoint)
    aws_env.setenv("AWS_ACCESS_KEY_ID", locked_bucket.access_key)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", locked_bucket.secret_key)
    store = open_store(f"s3://{locked_bucket.bucket}/nightshift")
    with pytest.raises(StorageError, match=r"access denied: cannot read s3://locked-bucket/nightshift/m\.json"):
        store.read_bytes("m.json")
    with pytest.raises(StorageError, match="access denied: cannot write"):
        store.write_bytes("m.json", b"{}")

    aws_env.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAREALKEY00000")
    with pytest.raises(StorageError, match="rejected the credentials for s3://locked-bucket"):
        open_store(f"s3://{locked_bucket.bucket}").list("")
