"""Lamina's S3 API with boto3, the AWS CLI and raw HTTP: buckets, objects, listings, ranges and
conditions, copies, multipart uploads, notifications, aws-chunked bodies, presigned URLs,
virtual-hosted addressing, S3's errors, and keys that try to leave the bucket's folder."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import boto3.s3.transfer
import pytest
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from tests.integration.conftest import PYTHON_RUNTIME, ROLE, client_for, invoke_json, make_zip
from tests.integration.rawhttp import raw, raw_json

SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=test/20261123/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"}  # fmt: skip
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    return client_for(endpoint, "s3")


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    err = exc.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"]


@contextlib.contextmanager
def refused(status: int, error: str | None = None) -> Iterator[None]:
    """The block must fail with this HTTP status and, when given, this S3 error code."""
    with pytest.raises(ClientError) as exc:
        yield
    got = code(exc)
    assert got[0] == status and error in (None, got[1]), got


def error_xml(body: bytes) -> dict[str, str]:
    root = ET.fromstring(body)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


def test_lambda_routes_are_untouched(endpoint: str, lambda_client: Any) -> None:
    assert "Functions" in lambda_client.list_functions()
    status, _, body = raw_json(endpoint, "GET", "/")  # unsigned: not S3
    assert status == 404 and body["Type"] == "User"


def test_buckets(s3: Any, endpoint: str) -> None:
    name = f"b-{uuid.uuid4().hex[:12]}"
    assert s3.create_bucket(Bucket=name)["Location"] == f"/{name}"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with refused(409, "BucketAlreadyOwnedByYou"):
        s3.create_bucket(Bucket=name)
    with refused(400, "InvalidBucketName"):
        s3.create_bucket(Bucket="Not_Valid")
    with refused(400, "InvalidBucketName"):
        s3.create_bucket(Bucket="192.168.1.1")
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    # A bucket made through S3 is one of Lamina's buckets too.
    status, _, shown = raw_json(endpoint, "GET", f"/lamina/v1/buckets/{name}")
    assert status == 200 and shown["Arn"] == f"arn:aws:s3:::{name}"

    s3.put_object(Bucket=name, Key="a/b.txt", Body=b"x")
    with refused(409, "BucketNotEmpty"):
        s3.delete_bucket(Bucket=name)
    s3.delete_object(Bucket=name, Key="a/b.txt")
    s3.delete_bucket(Bucket=name)
    with refused(404):
        s3.head_bucket(Bucket=name)
    with refused(404, "NoSuchBucket"):
        s3.list_objects_v2(Bucket=name)
    with refused(404, "NoSuchBucket"):
        s3.delete_bucket(Bucket=name)

    # S3's error document, with the resource and a request id that the header repeats.
    status, headers, body = raw(endpoint, "GET", f"/{name}/some/key", headers=SIGNED)
    assert status == 404 and headers["content-type"] == "application/xml"
    err = error_xml(body)
    assert err["Code"] == "NoSuchBucket" and err["Resource"] == f"/{name}/some/key"
    assert err["RequestId"] == headers["x-amz-request-id"]


def test_put_get_head_delete(s3: Any, bucket: str) -> None:
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/hello world.txt",
        Body=b"hello world",
        ContentType="text/x-greeting",
        Metadata={"Owner": "ada"},
        ContentDisposition="attachment",
    )
    assert put["ETag"] == f'"{hashlib.md5(b"hello world").hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/hello world.txt")
    assert got["Body"].read() == b"hello world"
    assert got["ContentType"] == "text/x-greeting"
    assert got["Metadata"] == {"owner": "ada"}
    assert got["ContentDisposition"] == "attachment"
    assert got["ETag"] == put["ETag"] and got["ContentLength"] == 11
    head = s3.head_object(Bucket=bucket, Key="dir/hello world.txt")
    assert head["ContentLength"] == 11 and head["ETag"] == put["ETag"]
    assert head["LastModified"] == got["LastModified"]

    s3.put_object(Bucket=bucket, Key="guessed.json", Body=b"{}")
    assert s3.head_object(Bucket=bucket, Key="guessed.json")["ContentType"] == "application/json"
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="empty")["Body"].read() == b""

    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="missing")
    with refused(404):
        s3.head_object(Bucket=bucket, Key="missing")
    s3.delete_object(Bucket=bucket, Key="missing")  # deleting nothing succeeds, as on S3
    s3.delete_object(Bucket=bucket, Key="dir/hello world.txt")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="dir/hello world.txt")

    # Replaced by a later put; a conditional put refuses to replace.
    s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    with refused(412, "PreconditionFailed"):
        s3.put_object(Bucket=bucket, Key="k", Body=b"three", IfNoneMatch="*")


def test_digests_are_checked(s3: Any, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with refused(400, "BadDigest"):
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ContentMD5=wrong)
    with refused(400, "InvalidDigest"):
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ContentMD5="not-base64!")
    with refused(400, "BadDigest"):
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ChecksumCRC32="AAAAAA==")
    with refused(400, "BadDigest"):
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ChecksumSHA256=base64.b64encode(b"x" * 32).decode())  # fmt: skip
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)  # nothing was written
    right = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    s3.put_object(
        Bucket=bucket, Key="k", Body=b"data", ContentMD5=right, ChecksumAlgorithm="SHA256"
    )
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"


def test_ranges_and_conditions(s3: Any, bucket: str) -> None:
    body = bytes(range(256)) * 4
    etag = s3.put_object(Bucket=bucket, Key="bin", Body=body)["ETag"]
    part = s3.get_object(Bucket=bucket, Key="bin", Range="bytes=10-19")
    assert part["Body"].read() == body[10:20]
    assert part["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="bin", Range="bytes=-5")["Body"].read() == body[-5:]
    assert (
        s3.get_object(Bucket=bucket, Key="bin", Range="bytes=1000-")["Body"].read() == body[1000:]
    )
    tail = s3.get_object(Bucket=bucket, Key="bin", Range="bytes=1020-5000")
    assert tail["Body"].read() == body[1020:]
    with refused(416, "InvalidRange"):
        s3.get_object(Bucket=bucket, Key="bin", Range=f"bytes={len(body)}-")

    assert s3.get_object(Bucket=bucket, Key="bin", IfMatch=etag)["Body"].read() == body
    with refused(412, "PreconditionFailed"):
        s3.get_object(Bucket=bucket, Key="bin", IfMatch='"0000"')
    with refused(304):
        s3.get_object(Bucket=bucket, Key="bin", IfNoneMatch=etag)
    head = s3.head_object(Bucket=bucket, Key="bin")
    with refused(304):
        s3.get_object(Bucket=bucket, Key="bin", IfModifiedSince=head["LastModified"])
    got = s3.get_object(Bucket=bucket, Key="bin", ResponseContentType="text/plain")
    assert got["ContentType"] == "text/plain"


def test_listing(s3: Any, bucket: str) -> None:
    keys = ["a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "d e+f/ü.txt", "z.txt"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == keys
    assert listed["KeyCount"] == len(keys) and not listed["IsTruncated"]
    first = listed["Contents"][0]
    assert first["Size"] == 5 and first["ETag"] == f'"{hashlib.md5(b"a.txt").hexdigest()}"'

    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a.txt", "z.txt"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["b/", "d e+f/"]
    assert top["KeyCount"] == 4
    inner = s3.list_objects_v2(Bucket=bucket, Prefix="b/", Delimiter="/")
    assert [o["Key"] for o in inner["Contents"]] == ["b/1.txt", "b/2.txt"]
    assert [p["Prefix"] for p in inner["CommonPrefixes"]] == ["b/c/"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="b/c")["Contents"]] == [
        "b/c/3.txt"
    ]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="nothing/")

    # Pages of two, with the paginator (continuation tokens), with and without a delimiter.
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 2}
        )
    )
    assert len(pages) == 3 and all(p["KeyCount"] == 2 for p in pages)
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    grouped = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}
        )
    )
    entries = [o["Key"] for p in grouped for o in p.get("Contents", [])] + [
        c["Prefix"] for p in grouped for c in p.get("CommonPrefixes", [])
    ]
    assert sorted(entries) == ["a.txt", "b/", "d e+f/", "z.txt"]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="b/2.txt")
    assert [o["Key"] for o in after["Contents"]] == keys[3:]
    v1 = list(
        s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 4})
    )
    assert [o["Key"] for p in v1 for o in p["Contents"]] == keys
    with refused(400, "InvalidArgument"):
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="garbage")


def test_copy_and_delete_objects(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src.txt", Body=b"copy me", ContentType="text/x-src", Metadata={"m": "1"})  # fmt: skip
    done = s3.copy_object(Bucket=bucket, Key="dst/x.txt", CopySource=f"{bucket}/src.txt")
    assert done["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"copy me").hexdigest()}"'
    copied = s3.get_object(Bucket=bucket, Key="dst/x.txt")
    assert copied["Body"].read() == b"copy me"
    assert copied["ContentType"] == "text/x-src" and copied["Metadata"] == {"m": "1"}
    s3.copy_object(
        Bucket=bucket, Key="src.txt", CopySource={"Bucket": bucket, "Key": "src.txt"},
        MetadataDirective="REPLACE", Metadata={"m": "2"}, ContentType="text/plain",
    )  # fmt: skip
    assert s3.head_object(Bucket=bucket, Key="src.txt")["Metadata"] == {"m": "2"}
    with refused(400, "InvalidRequest"):
        s3.copy_object(Bucket=bucket, Key="src.txt", CopySource=f"{bucket}/src.txt")
    with refused(404, "NoSuchKey"):
        s3.copy_object(Bucket=bucket, Key="y", CopySource=f"{bucket}/missing")

    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "src.txt"}, {"Key": "dst/x.txt"}, {"Key": "never"}]},
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["dst/x.txt", "never", "src.txt"]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}], "Quiet": True})
    assert "Deleted" not in quiet


def test_multipart_upload(s3: Any, bucket: str) -> None:
    data = os.urandom(11 * MiB)
    config = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)  # fmt: skip
    s3.upload_fileobj(io.BytesIO(data), bucket, "big.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    assert head["ETag"] == f'"{hashlib.md5(joined).hexdigest()}-3"'
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data

    upload = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=upload, PartNumber=1, Body=b"a")
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=upload, PartNumber=2, Body=b"b")
    with refused(400, "EntityTooSmall"):  # every part but the last must be 5 MiB or more
        s3.complete_multipart_upload(
            Bucket=bucket, Key="small", UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1["ETag"]}, {"PartNumber": 2, "ETag": e2["ETag"]}]},
        )  # fmt: skip
    with refused(400, "InvalidPart"):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="small", UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"ffff"'}]},
        )  # fmt: skip
    with refused(400, "InvalidPartOrder"):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="small", UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2["ETag"]}, {"PartNumber": 1, "ETag": e1["ETag"]}]},
        )  # fmt: skip
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="small", UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2["ETag"]}]},
    )  # fmt: skip
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"b"
    assert done["ETag"].endswith('-1"')

    aborted = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=aborted)
    with refused(404, "NoSuchUpload"):
        s3.upload_part(Bucket=bucket, Key="gone", UploadId=aborted, PartNumber=1, Body=b"x")
    with refused(404):
        s3.head_object(Bucket=bucket, Key="gone")


def test_notification_configuration(
    s3: Any, bucket: str, create_function: Callable[..., Any]
) -> None:
    fn = create_function("echo")
    config = {
        "LambdaFunctionConfigurations": [
            {
                "Id": "new",
                "LambdaFunctionArn": fn["FunctionArn"],
                "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": "in/"},
                            {"Name": "suffix", "Value": ".csv"},
                        ]
                    }
                },
            }
        ]
    }
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    got = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert got["LambdaFunctionConfigurations"] == config["LambdaFunctionConfigurations"]
    missing = fn["FunctionArn"] + "-missing"
    with refused(400, "InvalidArgument"):
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {"LambdaFunctionArn": missing, "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
    with refused(400, "InvalidArgument"):
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": "arn:aws:sqs:us-east-1:0:q", "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)  # fmt: skip
    with refused(404, "NoSuchBucket"):
        s3.get_bucket_notification_configuration(Bucket="no-such-bucket-here")
    with refused(501, "NotImplemented"):
        s3.get_bucket_tagging(Bucket=bucket)


RECORDER = """
import json, os
import boto3

s3 = boto3.client("s3")


def handler(event, context):
    for r in event["Records"]:
        name = r["s3"]["object"]["sequencer"] + "-" + r["eventName"].replace(":", "-")
        s3.put_object(Bucket=os.environ["LEDGER"], Key=name, Body=json.dumps(r).encode())
"""


def test_each_write_is_told_once(s3: Any, bucket: str, create_function: Callable[..., Any]) -> None:
    """Concurrent writers through the API: one event per distinct key (under S3's name: Put,
    Copy, CompleteMultipartUpload, Delete), and for one key written by several at once, the
    last event describes the object that is there."""
    ledger = f"l-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=ledger)
    fn = create_function(
        zip_bytes=make_zip({"rec.py": RECORDER}),
        handler="rec.handler",
        Timeout=30,
        Environment={"Variables": {"LEDGER": ledger}},
    )
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": fn["FunctionArn"],
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    bodies = {f"k{i}": os.urandom(100) for i in range(8)}
    same = [os.urandom(200 + i) for i in range(4)]
    with ThreadPoolExecutor(6) as pool:
        list(
            pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), bodies.items())
        )
        list(pool.map(lambda b: s3.put_object(Bucket=bucket, Key="same", Body=b), same))
    s3.delete_object(Bucket=bucket, Key="k0")
    config = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)  # fmt: skip
    s3.upload_fileobj(io.BytesIO(os.urandom(6 * MiB)), bucket, "multi.bin", Config=config)
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "k1"})
    final = s3.get_object(Bucket=bucket, Key="same")["Body"].read()

    def records() -> list[dict[str, Any]]:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=ledger).get("Contents", [])]
        return [json.loads(s3.get_object(Bucket=ledger, Key=k)["Body"].read()) for k in keys]

    final_etag = hashlib.md5(final).hexdigest()

    def complete() -> bool:
        # Invocations run concurrently and finish in any order: wait for the last state.
        got = records()
        return len(got) >= 12 and any(r["s3"]["object"].get("eTag") == final_etag for r in got)

    deadline = time.monotonic() + 60
    while not complete():
        assert time.monotonic() < deadline, "timed out waiting for the events"
        time.sleep(0.2)
    time.sleep(2.5)  # the watcher's own notice of each file comes after the settle time
    got = records()
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(got, key=lambda r: r["s3"]["object"]["sequencer"]):
        by_key.setdefault(r["s3"]["object"]["key"], []).append(r)
    for key, body in bodies.items():
        names = [r["eventName"] for r in by_key[key]]
        expected = ["ObjectCreated:Put"] + (["ObjectRemoved:Delete"] if key == "k0" else [])
        assert names == expected, key
        assert by_key[key][0]["s3"]["object"]["eTag"] == hashlib.md5(body).hexdigest()
    (multi,) = by_key["multi.bin"]
    assert multi["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert multi["s3"]["object"]["eTag"].endswith("-2")
    assert multi["s3"]["object"]["size"] == 6 * MiB
    assert [r["eventName"] for r in by_key["copied"]] == ["ObjectCreated:Copy"]
    told = by_key["same"]
    assert 1 <= len(told) <= 4
    assert told[-1]["s3"]["object"]["eTag"] == final_etag
    assert len({r["s3"]["object"]["eTag"] for r in told}) == len(told)  # no state told twice
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=ledger):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=ledger, Key=obj["Key"])
    s3.delete_bucket(Bucket=ledger)


def test_aws_chunked_bodies(s3: Any, bucket: str, endpoint: str) -> None:
    """What botocore sends over HTTPS (unsigned payload, trailing CRC32), decoded."""
    data = b"0123456789" * 10_000
    body = AwsChunkedWrapper(
        io.BytesIO(data), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32",
        chunk_size=16 * 1024,
    ).read()  # fmt: skip
    headers = {
        **SIGNED,
        "Content-Encoding": "aws-chunked",
        "X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "X-Amz-Trailer": "x-amz-checksum-crc32",
        "Content-Type": "text/plain",
    }
    status, out, _ = raw(endpoint, "PUT", f"/{bucket}/chunked.txt", body, headers)
    assert status == 200 and out["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="chunked.txt")
    assert got["Body"].read() == data and got["ContentType"] == "text/plain"
    assert "ContentEncoding" not in got  # aws-chunked is the transfer's, not the object's

    bad_crc = base64.b64encode((zlib.crc32(data) ^ 1).to_bytes(4, "big")).decode()
    tampered = body.replace(b"x-amz-checksum-crc32:", b"x-amz-checksum-crc32:" + bad_crc.encode() + b"\r\nx-old:")  # fmt: skip
    status, _, err = raw(endpoint, "PUT", f"/{bucket}/bad.txt", tampered, headers)
    assert status == 400 and error_xml(err)["Code"] == "BadDigest"
    status, _, err = raw(endpoint, "PUT", f"/{bucket}/cut.txt", body[:-40], headers)
    assert status == 400 and error_xml(err)["Code"] == "IncompleteBody"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["chunked.txt"]


def test_presigned_urls_and_virtual_hosts(s3: Any, bucket: str, endpoint: str) -> None:
    s3.put_object(Bucket=bucket, Key="a b.txt", Body=b"shared")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a b.txt"})
    assert "Signature=" in url  # botocore's default for S3 presigning: SigV2 query
    status, _, body = raw(endpoint, "GET", url.split(endpoint, 1)[1])
    assert (status, body) == (200, b"shared")
    v4 = client_for(endpoint, "s3", signature_version="s3v4")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a b.txt"})
    assert "X-Amz-Credential=" in url
    status, _, body = raw(endpoint, "GET", url.split(endpoint, 1)[1])
    assert (status, body) == (200, b"shared")
    url = v4.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up.txt"})
    status, _, _ = raw(endpoint, "PUT", url.split(endpoint, 1)[1], b"uploaded")
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="up.txt")["Body"].read() == b"uploaded"

    # Virtual-hosted style: the bucket in the Host (bucket.localhost), the key in the path.
    host = {**SIGNED, "Host": f"{bucket}.localhost:{endpoint.rsplit(':', 1)[1]}"}
    status, _, body = raw(endpoint, "GET", "/a%20b.txt", headers=host)
    assert (status, body) == (200, b"shared")
    status, _, body = raw(endpoint, "GET", "/?list-type=2", headers=host)
    assert status == 200 and b"<Key>a b.txt</Key>" in body


def test_keys_never_leave_the_bucket(
    s3: Any, endpoint: str, tmp_path: Path, unique_name: str
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (folder / "link").symlink_to(outside)  # a folder link out of the bucket
    (folder / "file-link").symlink_to(outside / "secret.txt")
    name = unique_name.lower()[:40].strip("-") + "-b"
    status, _, _ = raw_json(endpoint, "PUT", f"/lamina/v1/buckets/{name}", {"Path": str(folder)})
    assert status == 201
    try:
        for raw_key in ("..%2Fescape.txt", "a/..%2F..%2Fescape.txt", "%2Fabs.txt", "a//b",
                        "./x", ".hidden", "x.tmp", "dir/", "link/new.txt", "a" * 1100):  # fmt: skip
            status, _, err = raw(endpoint, "PUT", f"/{name}/{raw_key}", b"x", SIGNED)
            assert status == 400, raw_key
            assert error_xml(err)["Code"] in ("InvalidArgument", "KeyTooLongError"), raw_key
        with refused(400, "InvalidArgument"):
            s3.put_object(Bucket=name, Key="../../escape.txt", Body=b"x")
        with refused(400, "InvalidArgument"):
            s3.put_object(Bucket=name, Key="/etc/escape.txt", Body=b"x")
        assert not list(tmp_path.glob("**/escape.txt")) and not (outside / "new.txt").exists()
        for raw_key in ("..%2Foutside%2Fsecret.txt", "link/secret.txt", "file-link", "%2Fetc%2Fpasswd"):  # fmt: skip
            status, _, err = raw(endpoint, "GET", f"/{name}/{raw_key}", headers=SIGNED)
            assert status == 404 and error_xml(err)["Code"] == "NoSuchKey", raw_key
        assert "Contents" not in s3.list_objects_v2(Bucket=name)
        s3.put_object(Bucket=name, Key="inside/ok.txt", Body=b"fine")
        assert (folder / "inside" / "ok.txt").read_bytes() == b"fine"
        s3.put_object(Bucket=name, Key="plain", Body=b"file")
        with refused(400, "InvalidArgument"):  # a folder where a file is
            s3.put_object(Bucket=name, Key="plain/sub", Body=b"x")
        s3.delete_object(Bucket=name, Key="plain")
        s3.delete_object(Bucket=name, Key="inside/ok.txt")
        assert (folder / "inside").is_dir()  # a host folder's folders are left alone
        # A bucket of a host folder is deleted through S3 when empty; the folder stays.
        s3.delete_bucket(Bucket=name)
        assert folder.is_dir()
    finally:
        raw_json(endpoint, "DELETE", f"/lamina/v1/buckets/{name}")


def test_aws_cli(aws_cli: Callable[..., Any], tmp_path: Path, s3: Any) -> None:
    name = f"cli-{uuid.uuid4().hex[:12]}"
    assert f"make_bucket: {name}" in aws_cli("s3", "mb", f"s3://{name}").stdout
    small = tmp_path / "small file.txt"
    small.write_text("small\n")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * MiB))  # above the CLI's 8 MiB: a multipart upload
    aws_cli("s3", "cp", str(small), f"s3://{name}/docs/small file.txt")
    aws_cli("s3", "cp", str(big), f"s3://{name}/big.bin")
    assert s3.head_object(Bucket=name, Key="big.bin")["ETag"].endswith('-2"')
    listing = aws_cli("s3", "ls", f"s3://{name}", "--recursive").stdout
    assert "docs/small file.txt" in listing and str(9 * MiB) in listing
    assert "PRE docs/" in aws_cli("s3", "ls", f"s3://{name}").stdout
    aws_cli("s3", "cp", f"s3://{name}/big.bin", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    head = json.loads(aws_cli("s3api", "head-object", "--bucket", name, "--key", "docs/small file.txt").stdout)  # fmt: skip
    assert head["ContentLength"] == 6 and head["ContentType"] == "text/plain"
    missing = aws_cli("s3api", "get-object", "--bucket", name, "--key", "nope", str(tmp_path / "x"), check=False)  # fmt: skip
    assert missing.returncode != 0 and "NoSuchKey" in missing.stderr
    sync = tmp_path / "sync"
    (sync / "sub").mkdir(parents=True)
    (sync / "sub" / "1.txt").write_text("1")
    (sync / "2.txt").write_text("2")
    for path in (sync / "sub" / "1.txt", sync / "2.txt"):
        # Older than the upload by more than LastModified's whole seconds, so that the second
        # sync finds nothing newer (as it would against S3).
        os.utime(path, (path.stat().st_atime - 3600, path.stat().st_mtime - 3600))
    aws_cli("s3", "sync", str(sync), f"s3://{name}/sync/")
    assert "upload" not in aws_cli("s3", "sync", str(sync), f"s3://{name}/sync/").stdout
    aws_cli("s3", "sync", f"s3://{name}/sync/", str(tmp_path / "down"))
    assert (tmp_path / "down" / "sub" / "1.txt").read_text() == "1"
    failed = aws_cli("s3", "rb", f"s3://{name}", check=False)
    assert failed.returncode != 0 and "BucketNotEmpty" in failed.stderr
    aws_cli("s3", "rm", f"s3://{name}", "--recursive")
    assert f"remove_bucket: {name}" in aws_cli("s3", "rb", f"s3://{name}").stdout


def test_localhost_endpoint(endpoint: str, tmp_path: Path) -> None:
    """boto3 and the CLI with http://localhost:PORT use path style (bucket.localhost is not
    resolved)."""
    name = f"lhc-{uuid.uuid4().hex[:12]}"
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", endpoint.replace("127.0.0.1", "localhost")]  # fmt: skip
    env = {**os.environ, "AWS_PAGER": "", "AWS_DEFAULT_REGION": "us-east-1"}
    (tmp_path / "f.txt").write_text("via localhost")
    for args in (
        ["s3", "mb", f"s3://{name}"],
        ["s3", "cp", str(tmp_path / "f.txt"), f"s3://{name}/f.txt"],
        ["s3", "cp", f"s3://{name}/f.txt", str(tmp_path / "back.txt")],
        ["s3", "rm", f"s3://{name}/f.txt"],
        ["s3", "rb", f"s3://{name}"],
    ):
        proc = subprocess.run([*aws, *args], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "back.txt").read_text() == "via localhost"

    local = client_for(endpoint.replace("127.0.0.1", "localhost"), "s3", s3={"addressing_style": "auto"})  # fmt: skip
    name = f"lh-{uuid.uuid4().hex[:12]}"
    local.create_bucket(Bucket=name)
    local.put_object(Bucket=name, Key="k", Body=b"v")
    assert local.get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    local.delete_object(Bucket=name, Key="k")
    local.delete_bucket(Bucket=name)


def test_function_code_and_layers_from_a_bucket(
    s3: Any, bucket: str, lambda_client: Any, aws_cli: Callable[..., Any], unique_name: str
) -> None:
    """Code.S3Bucket/S3Key (CreateFunction, UpdateFunctionCode) and Content.S3Bucket/S3Key
    (PublishLayerVersion) read zips from Lamina's own buckets."""
    s3.put_object(Bucket=bucket, Key="pkg/v1.zip", Body=make_zip({"app.py": APP.format(1)}))
    s3.put_object(Bucket=bucket, Key="pkg/v2.zip", Body=make_zip({"app.py": APP.format(2)}))
    s3.put_object(Bucket=bucket, Key="layer.zip", Body=make_zip({"python/shared.py": "X = 7\n"}))
    layer = lambda_client.publish_layer_version(
        LayerName=unique_name, Content={"S3Bucket": bucket, "S3Key": "layer.zip"}
    )
    lambda_client.create_function(
        FunctionName=unique_name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler="app.handler",
        Code={"S3Bucket": bucket, "S3Key": "pkg/v1.zip"},
        Layers=[layer["LayerVersionArn"]],
    )
    try:
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=unique_name)
        _, out = invoke_json(lambda_client, unique_name)
        assert out == {"version": 1, "layer": 7}
        aws_cli(
            "lambda", "update-function-code", "--function-name", unique_name,
            "--s3-bucket", bucket, "--s3-key", "pkg/v2.zip",
        )  # fmt: skip
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=unique_name)
        _, out = invoke_json(lambda_client, unique_name)
        assert out == {"version": 2, "layer": 7}
        with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as exc:
            lambda_client.update_function_code(
                FunctionName=unique_name, S3Bucket=bucket, S3Key="pkg/missing.zip"
            )
        assert "S3 Error Code: NoSuchKey" in str(exc.value)
    finally:
        lambda_client.delete_function(FunctionName=unique_name)
        lambda_client.delete_layer_version(LayerName=unique_name, VersionNumber=layer["Version"])


APP = """
import shared


def handler(event, context):
    return {{"version": {0}, "layer": shared.X}}
"""
