"""Invoke payloads: JSON only, in the encodings json.loads accepts, within the size limit."""

from __future__ import annotations

import pytest

from lamina.api.invoke import check_payload
from lamina.errors import InvalidRequestContentException, RequestTooLargeException


def test_json_payloads_pass_unchanged() -> None:
    for payload in (b"{}", b' {"a": [1, 2.5, null]} ', '"caf\u00e9"'.encode(), b"3"):
        assert check_payload(payload, 100) is payload
    assert check_payload(b"", 100) == b"{}"


def test_other_encodings_json_loads_takes_still_pass() -> None:
    for payload in ('{"a": "\u00e9"}'.encode("utf-16"), b"\xef\xbb\xbf{}"):
        assert check_payload(payload, 100) is payload


def test_not_json_or_too_large_is_refused() -> None:
    for payload in (b"{", b"{} x", b"\xff\xfe\xfd"):
        with pytest.raises(InvalidRequestContentException):
            check_payload(payload, 100)
    with pytest.raises(RequestTooLargeException):
        check_payload(b"[" + b"1," * 60 + b"1]", 100)
