"""S3 wire pieces: which requests are S3's, aws-chunked decoding, ranges, keys a folder can hold."""

from __future__ import annotations

import io

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from lamina.api.s3 import ChunkedDecoder, _range, is_s3_request
from lamina.triggers.buckets import valid_bucket_name
from lamina.triggers.object_store import check_key
from lamina.triggers.s3_errors import IncompleteBody, InvalidArgument, InvalidRange, S3Error

V4 = "AWS4-HMAC-SHA256 Credential=AK/20261123/{}/{}/aws4_request, SignedHeaders=host, Signature=0"


@pytest.mark.parametrize(
    ("headers", "query", "s3"),
    [
        ({"authorization": V4.format("us-east-1", "s3")}, b"", True),
        ({"authorization": V4.format("eu-west-1", "lambda")}, b"", False),
        ({"authorization": V4.format("us-east-1", "logs")}, b"", False),
        ({"authorization": "AWS AK:c2lnbmF0dXJl"}, b"", True),  # SigV2
        (
            {},
            b"X-Amz-Credential=AK%2F20261123%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=0",
            True,
        ),
        ({}, b"AWSAccessKeyId=AK&Signature=abc&Expires=1", True),
        ({}, b"Qualifier=1", False),
        ({}, b"", False),
    ],
)
def test_which_requests_are_s3(headers: dict[str, str], query: bytes, s3: bool) -> None:
    assert is_s3_request(headers, query) is s3


def test_aws_chunked_as_botocore_writes_it_fed_byte_by_byte() -> None:
    data = bytes(range(256)) * 100
    body = AwsChunkedWrapper(
        io.BytesIO(data),
        checksum_cls=Crc32Checksum,
        checksum_name="x-amz-checksum-crc32",
        chunk_size=1000,
    ).read()
    decoder = ChunkedDecoder()
    out = b"".join(decoder.feed(body[i : i + 1]) for i in range(len(body)))
    decoder.finish()
    assert out == data
    assert set(decoder.trailers) == {"x-amz-checksum-crc32"}


def test_signed_chunks_and_malformed_bodies() -> None:
    decoder = ChunkedDecoder()
    signed = b"5;chunk-signature=abc\r\nhello\r\n0;chunk-signature=def\r\n\r\n"
    assert decoder.feed(signed) == b"hello"
    decoder.finish()
    cut = ChunkedDecoder()
    cut.feed(b"5\r\nhel")
    with pytest.raises(IncompleteBody):
        cut.finish()
    with pytest.raises(IncompleteBody):
        ChunkedDecoder().feed(b"zz\r\n")
    with pytest.raises(IncompleteBody):
        ChunkedDecoder().feed(b"2\r\nabXX")


@pytest.mark.parametrize(
    ("header", "size", "span"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 1)),
        ("bytes=2-5", 10, (2, 4)),
        ("bytes=8-", 10, (8, 2)),
        ("bytes=5-100", 10, (5, 5)),
        ("bytes=-3", 10, (7, 3)),
        ("bytes=-30", 10, (0, 10)),
        ("bytes=5-2", 10, None),  # invalid: S3 sends the whole object
        ("bytes=0-1,4-5", 10, None),  # several ranges: the whole object
        ("items=0-1", 10, None),
    ],
)
def test_ranges(header: str | None, size: int, span: tuple[int, int] | None) -> None:
    assert _range(header, size) == span


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(InvalidRange):
        _range(header, size)


@pytest.mark.parametrize("key", ["a.csv", "dir/sub/a b+c.txt", "ü/é", "a..b", "x/y..z"])
def test_keys_a_folder_holds(key: str) -> None:
    check_key(key)


@pytest.mark.parametrize(
    "key",
    ["", "..", "../x", "a/" + "n" * 256, "a/../../x", "/etc/passwd", "a//b", "dir/", "./a", "a/./b", ".env",
     "a/.git/config", "x.tmp", "x~", "nul\x00byte", "k" * 1025],
)  # fmt: skip
def test_keys_refused(key: str) -> None:
    with pytest.raises(S3Error) as exc:
        check_key(key)
    assert isinstance(exc.value, InvalidArgument) or exc.value.code == "KeyTooLongError"
    assert exc.value.status == 400


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("abc", True),
        ("my-bucket.2026", True),
        ("a" * 63, True),
        ("ab", False),
        ("a" * 64, False),
        ("Upper", False),
        ("under_score", False),
        ("-start", False),
        ("end-", False),
        ("two..dots", False),
        ("dot.-dash", False),
        ("192.168.1.1", False),
    ],
)
def test_bucket_names(name: str, valid: bool) -> None:
    assert valid_bucket_name(name) is valid
