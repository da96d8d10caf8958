"""The rehearsal's S3 server (`rclone serve s3`): the calls drctl and the node agents make, with its
keys only, and stopped means gone."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from drctl.local import s3_server

pytestmark = pytest.mark.integration


def client(endpoint: str, key: str, secret: str, region: str = "us-east-1"):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name=region)


def test_objects_round_trip_including_a_multipart_upload(tmp_path):
    with s3_server.start(tmp_path / "root", tmp_path / "log") as server:
        bucket = server.create_bucket("wcdr-media-eu")
        s3 = client(server.endpoint, server.access_key, server.secret_key, server.region)
        s3.put_object(Bucket=bucket, Key="2026/11/a.jpg", Body=b"jpeg")
        body = os.urandom(20 << 20)  # over boto3's 8 MiB multipart threshold
        (tmp_path / "big").write_bytes(body)
        s3.upload_file(str(tmp_path / "big"), bucket, "big.bin")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
        assert keys == ["2026/11/a.jpg", "big.bin"]
        assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == body
        s3.delete_object(Bucket=bucket, Key="2026/11/a.jpg")
        assert (tmp_path / "root" / bucket / "big.bin").read_bytes() == body
        assert not (tmp_path / "root" / bucket / "2026" / "11" / "a.jpg").exists()


def test_another_key_is_refused_and_the_secret_is_on_no_command_line(tmp_path):
    with s3_server.start(tmp_path / "root", tmp_path / "log") as server:
        server.create_bucket("wcdr-media-eu")
        with pytest.raises(ClientError) as refused:
            client(server.endpoint, "WCDR0000000000000000", "not-the-secret-at-all").list_objects_v2(
                Bucket="wcdr-media-eu")
        assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().decode()
        assert server.secret_key not in cmdline and server.secret_key not in repr(server)


def test_a_stopped_server_refuses_connections(tmp_path):
    server = s3_server.start(tmp_path / "root", tmp_path / "log")
    endpoint = server.endpoint
    server.stop()
    assert server.process.poll() is not None
    with pytest.raises(EndpointConnectionError):
        client(endpoint, server.access_key, server.secret_key).list_buckets()
