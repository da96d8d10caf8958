"""One S3-compatible bucket (Linode Object Storage; the loopback S3 server in the tests) through
boto3, with a key scoped to it: the binlog archive (drctl/backup) writes and reads it this way.

Every failure to reach the store is a `StoreUnavailable` saying which bucket and endpoint, never
the credentials; the archiver keeps its spool and retries, the restore stops.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class StoreUnavailable(Exception):
    """The object store did not answer or refused; the message names the bucket and the endpoint."""


class ObjectMissing(Exception):
    pass


@dataclass(frozen=True)
class BucketAccess:
    endpoint: str  # https://us-east-1.linodeobjects.com, or http://127.0.0.1:PORT in tests
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def __repr__(self) -> str:  # never the keys
        return f"BucketAccess({self.bucket} at {self.endpoint})"


class Bucket:
    def __init__(self, access: BucketAccess, timeout: float = 10):
        import boto3
        from botocore.config import Config

        self.access = access
        self.where = f"bucket {access.bucket} at {access.endpoint}"
        endpoint = access.endpoint if "://" in access.endpoint else f"https://{access.endpoint}"
        self._client = boto3.client(
            "s3", endpoint_url=endpoint, aws_access_key_id=access.access_key,
            aws_secret_access_key=access.secret_key, region_name=access.region,
            config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2},
                          s3={"addressing_style": "path"}))

    def _call(self, what: str, fn, *args, **kwargs) -> Any:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError
        from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError, S3UploadFailedError

        try:
            return fn(*args, **kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectMissing(f"{what}: no such object in {self.where}") from None
            raise StoreUnavailable(f"{what}: {self.where} refused ({code or 'error'})") from None
        except (BotoCoreError, OSError) as err:
            raise StoreUnavailable(f"{what}: {self.where} did not answer ({type(err).__name__})") from None
        except (Boto3Error, RetriesExceededError, S3DownloadFailedError, S3UploadFailedError) as err:  # a multipart transfer that ran out of retries
            cause = getattr(err, "last_exception", None) or err
            raise StoreUnavailable(f"{what}: {self.where} failed part-way ({type(cause).__name__})") from None

    def put_file(self, name: str, path: Path) -> None:
        self._call(f"upload {name}", self._client.upload_file, str(path), self.access.bucket, name)

    def put_bytes(self, name: str, data: bytes) -> None:
        self._call(f"upload {name}", self._client.put_object, Bucket=self.access.bucket, Key=name, Body=data)

    def put_json(self, name: str, doc: Any) -> None:
        self.put_bytes(name, json.dumps(doc, sort_keys=True, indent=1).encode())

    def get_file(self, name: str, path: Path) -> None:
        self._call(f"download {name}", self._client.download_file, self.access.bucket, name, str(path))

    def get_bytes(self, name: str) -> bytes:
        reply = self._call(f"download {name}", self._client.get_object, Bucket=self.access.bucket, Key=name)
        return self._call(f"download {name}", reply["Body"].read)

    def get_json(self, name: str) -> Any:
        return json.loads(self.get_bytes(name))

    def list(self, prefix: str) -> list[str]:
        names: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        pages = self._call(f"list {prefix}", lambda: list(paginator.paginate(Bucket=self.access.bucket, Prefix=prefix)))
        for page in pages:
            names.extend(item["Key"] for item in page.get("Contents", ()))
        return sorted(names)

    def delete(self, names: list[str]) -> None:
        for i in range(0, len(names), 1000):
            batch = [{"Key": n} for n in names[i:i + 1000]]
            self._call("delete", self._client.delete_objects, Bucket=self.access.bucket, Delete={"Objects": batch})
