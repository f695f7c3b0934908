"""A real S3 API for integration tests: moto's standalone server on a free local port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nightshift.stores.objects import ensure_bucket
from tests.servers import free_port, moto_server

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "NIGHTSHIFT_S3_ENDPOINT_URL",
)


def raw_client(endpoint: str, service: str = "s3", key: str = "testing", secret: str = "testing") -> Any:
    """A boto3 client for checking the server's state independently of the code under test."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1").client(
        service, endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"})
    )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of a moto server that lives for the whole test session."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto_server.log") as endpoint:
        yield endpoint


@dataclass(frozen=True)
class LockedBucket:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str


@pytest.fixture(scope="session")
def locked_bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockedBucket]:
    """A moto server that enforces IAM, with a bucket and a user who has no permissions at all."""
    log = tmp_path_factory.mktemp("moto-auth") / "moto_server.log"
    with moto_server(log, INITIAL_NO_AUTH_ACTION_COUNT="3") as endpoint:
        iam = raw_client(endpoint, "iam")
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]
        raw_client(endpoint).create_bucket(Bucket="locked-bucket")
        yield LockedBucket(endpoint, "locked-bucket", key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AWS settings from the developer's shell or ~/.aws leak into a test."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture
def s3_store_uri(s3_server: str, aws_env: pytest.MonkeyPatch) -> str:
    """`s3://<fresh bucket>/nightshift` on the moto server, with the environment pointing at it."""
    aws_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws_env.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws_env.setenv("NIGHTSHIFT_S3_ENDPOINT_URL", s3_server)
    bucket = f"nightshift-{uuid.uuid4().hex[:12]}"
    ensure_bucket(f"s3://{bucket}")
    return f"s3://{bucket}/nightshift"


@pytest.fixture
def s3_admin(s3_server: str) -> Any:
    """A plain boto3 client on the moto server, to inspect what the store wrote."""
    return raw_client(s3_server)


@pytest.fixture
def closed_endpoint() -> str:
    """An HTTP endpoint on a local port nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"
