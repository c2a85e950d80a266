"""The router matches raw (percent-encoded) paths and decodes parameters afterwards."""

from __future__ import annotations

import uuid

from lamina.api.http import Request, Response, Router, empty, new_request_id, parse_query


async def _handler(req: Request) -> Response:
    return empty()


async def _other(req: Request) -> Response:
    return empty(200)


def test_arn_in_path_is_decoded_after_matching() -> None:
    router = Router()
    router.add("GET", "/2015-03-31/functions/{name}", _handler)
    found = router.match(
        "GET",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af%3A%24LATEST",
        {},
    )
    assert isinstance(found, tuple)
    assert found[1] == {"name": "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"}


def test_encoded_slash_stays_inside_one_segment() -> None:
    router = Router()
    router.add("GET", "/x/{a}/y", _handler)
    found = router.match("GET", "/x/a%2Fb/y", {})
    assert isinstance(found, tuple) and found[1] == {"a": "a/b"}


def test_routes_with_literal_query_win() -> None:
    router = Router()
    router.add("GET", "/2018-10-31/layers", _handler)
    router.add("GET", "/2018-10-31/layers", _other, query={"find": "LayerVersion"})
    found = router.match("GET", "/2018-10-31/layers", parse_query(b"find=LayerVersion&Arn=x"))
    assert isinstance(found, tuple) and found[0] is _other
    found = router.match("GET", "/2018-10-31/layers", {})
    assert isinstance(found, tuple) and found[0] is _handler


def test_wrong_method_is_told_apart_from_unknown_path() -> None:
    router = Router()
    router.add("GET", "/a", _handler)
    assert router.match("DELETE", "/a", {}) is False
    assert router.match("GET", "/b", {}) is None


def test_repeated_paths_match_alike_and_params_are_the_callers() -> None:
    router = Router()
    router.add("POST", "/f/{name}/invocations", _handler)
    router.add("POST", "/f/{name}/invocations", _other, query={"x": None})
    for _ in range(2):
        found = router.match("POST", "/f/a%3Ab/invocations", {})
        assert isinstance(found, tuple) and found[0] is _handler
        assert found[1] == {"name": "a:b"}
        found[1]["name"] = "changed"  # a caller's copy: the next match is not affected
        with_query = router.match("POST", "/f/a%3Ab/invocations", parse_query(b"x=1"))
        assert isinstance(with_query, tuple) and with_query[0] is _other
        assert router.match("GET", "/f/a/invocations", {}) is False
        assert router.match("POST", "/g", {}) is None


def test_request_ids_are_version_4_uuids() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for rid in ids:
        parsed = uuid.UUID(rid)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == rid
