"""The control-plane API (issue 2, section 2) as boto3 sees it, checked against botocore's model."""

from __future__ import annotations

import base64
import hashlib
import re
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.integration.conftest import (
    PYTHON_RUNTIME,
    ROLE,
    CreateFunction,
    client_for,
    function_zip,
    invoke_json,
    make_zip,
)
from tests.integration.lamina_process import LaminaProcess
from tests.integration.rawhttp import raw

ACCOUNT = "000000000000"
REGION = "us-east-1"
LAMBDA_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")
FAST_WAIT = {"Delay": 0.1, "MaxAttempts": 200}
# Functions that are invoked get room for a cold start on a busy 2-core machine.
SLOW_BOX_TIMEOUT = 60


def arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def poll(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout_s: float = 30.0) -> Any:
    """Call `fetch` until `done` holds for its result; fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout_s}s; last: {value!r}")
        time.sleep(0.05)


# -- CreateFunction ---------------------------------------------------------------------------


def test_create_function_response(lambda_client: Any, unique_name: str) -> None:
    code = function_zip("echo")
    try:
        cfg = lambda_client.create_function(
            FunctionName=unique_name,
            Runtime=PYTHON_RUNTIME,
            Role=ROLE,
            Handler="echo.handler",
            Code={"ZipFile": code},
        )
        assert cfg["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert cfg["FunctionName"] == unique_name
        assert cfg["FunctionArn"] == arn(unique_name)
        assert cfg["Runtime"] == PYTHON_RUNTIME
        assert cfg["Role"] == ROLE
        assert cfg["Handler"] == "echo.handler"
        assert cfg["CodeSha256"] == base64.b64encode(hashlib.sha256(code).digest()).decode()
        assert len(cfg["CodeSha256"]) == 44
        assert cfg["CodeSize"] == len(code)
        assert cfg["Version"] == "$LATEST"
        assert cfg["Description"] == ""
        assert cfg["Timeout"] == 3
        assert cfg["MemorySize"] == 128
        assert cfg["EphemeralStorage"] == {"Size": 512}
        assert cfg["Architectures"] == ["x86_64"]
        assert cfg["PackageType"] == "Zip"
        assert cfg["TracingConfig"] == {"Mode": "PassThrough"}
        assert cfg["LoggingConfig"]["LogGroup"] == f"/aws/lambda/{unique_name}"
        assert LAMBDA_TIMESTAMP.fullmatch(cfg["LastModified"])
        uuid.UUID(cfg["RevisionId"])
        assert "Environment" not in cfg  # only when variables were given
        assert cfg["State"] == "Pending"
        assert cfg["StateReasonCode"] == "Creating"
        assert "LastUpdateStatus" not in cfg

        lambda_client.get_waiter("function_active_v2").wait(
            FunctionName=unique_name, WaiterConfig=FAST_WAIT
        )
        got = lambda_client.get_function_configuration(FunctionName=unique_name)
        assert got["State"] == "Active"
        assert got["LastUpdateStatus"] == "Successful"
        assert "StateReason" not in got and "StateReasonCode" not in got
        assert got["RevisionId"] != cfg["RevisionId"]  # the transition is a change of the record
        assert got["CodeSha256"] == cfg["CodeSha256"]
    finally:
        lambda_client.delete_function(FunctionName=unique_name)


def test_create_with_every_setting(create_function: CreateFunction, lambda_client: Any) -> None:
    cfg = create_function(
        "echo",
        Description="all the knobs",
        Timeout=45,
        MemorySize=512,
        EphemeralStorage={"Size": 1024},
        Environment={"Variables": {"GREETING": "hello", "EMPTY": ""}},
        Architectures=["arm64"],
        TracingConfig={"Mode": "Active"},
        Tags={"team": "core", "env": "test"},
    )
    got = lambda_client.get_function(FunctionName=cfg["FunctionName"])
    conf = got["Configuration"]
    assert conf["Description"] == "all the knobs"
    assert conf["Timeout"] == 45
    assert conf["MemorySize"] == 512
    assert conf["EphemeralStorage"] == {"Size": 1024}
    assert conf["Environment"] == {"Variables": {"GREETING": "hello", "EMPTY": ""}}
    assert conf["Architectures"] == ["arm64"]
    assert conf["TracingConfig"] == {"Mode": "Active"}
    assert got["Tags"] == {"team": "core", "env": "test"}
    _, body = invoke_json(lambda_client, cfg["FunctionName"])
    assert body["env"]["GREETING"] == "hello"
    assert body["memory_limit_in_mb"] == "512"


# -- GetFunction / GetFunctionConfiguration --------------------------------------------------


def test_get_function_code_location_downloads_the_zip(
    create_function: CreateFunction, lambda_client: Any
) -> None:
    code = make_zip({"echo.py": (Path(__file__).parent / "functions" / "echo.py").read_text()})
    cfg = create_function("echo", zip_bytes=code)
    got = lambda_client.get_function(FunctionName=cfg["FunctionName"])
    assert got["Code"]["RepositoryType"] == "S3"
    with urllib.request.urlopen(got["Code"]["Location"], timeout=30) as resp:
        assert resp.status == 200
        assert resp.read() == code
    assert "Concurrency" not in got  # only when reserved concurrency is set
    assert "Tags" not in got
    assert got["Configuration"]["FunctionArn"] == arn(cfg["FunctionName"])
    assert got["Configuration"]["State"] == "Active"


def test_get_function_configuration_matches_get_function(
    create_function: CreateFunction, lambda_client: Any
) -> None:
    name = create_function("echo", Description="same")["FunctionName"]
    via_get = lambda_client.get_function(FunctionName=name)["Configuration"]
    via_conf = lambda_client.get_function_configuration(FunctionName=name)
    via_conf.pop("ResponseMetadata")
    assert via_conf == via_get


def test_function_name_forms(create_function: CreateFunction, lambda_client: Any) -> None:
    name = create_function("echo")["FunctionName"]
    for form in (
        name,
        f"{ACCOUNT}:function:{name}",
        arn(name),
        f"{name}:$LATEST",
        f"{arn(name)}:$LATEST",
    ):
        conf = lambda_client.get_function_configuration(FunctionName=form)
        assert conf["FunctionName"] == name, form
        assert (
            lambda_client.get_function(FunctionName=form)["Configuration"]["FunctionName"] == name
        )
    # Qualifier as a parameter, alone and agreeing with the one in the name.
    conf = lambda_client.get_function_configuration(FunctionName=name, Qualifier="$LATEST")
    assert conf["Version"] == "$LATEST"
    lambda_client.get_function(FunctionName=f"{name}:$LATEST", Qualifier="$LATEST")


def test_qualified_read_returns_qualified_arn(
    create_function: CreateFunction, lambda_client: Any
) -> None:
    name = create_function("echo")["FunctionName"]
    got = lambda_client.get_function(FunctionName=name, Qualifier="$LATEST")
    assert got["Configuration"]["FunctionArn"] == f"{arn(name)}:$LATEST"
    conf = lambda_client.get_function_configuration(FunctionName=f"{name}:$LATEST")
    assert conf["FunctionArn"] == f"{arn(name)}:$LATEST"
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == arn(
        name
    )


def test_name_forms_that_name_nothing(create_function: CreateFunction, lambda_client: Any) -> None:
    name = create_function("echo")["FunctionName"]
    errors = lambda_client.exceptions
    with pytest.raises(errors.ResourceNotFoundException) as err:
        lambda_client.get_function(
            FunctionName=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{name}"
        )
    assert err.value.response["Message"] == (
        "Functions from 'eu-west-1' are not reachable in this region ('us-east-1')"
    )
    with pytest.raises(errors.ResourceNotFoundException):
        lambda_client.get_function(FunctionName=f"111111111111:function:{name}")
    with pytest.raises(errors.ResourceNotFoundException) as err:
        lambda_client.get_function(FunctionName=name, Qualifier="7")
    assert err.value.response["Message"] == f"Function not found: {arn(name)}:7"
    with pytest.raises(errors.InvalidParameterValueException) as err:
        lambda_client.get_function(FunctionName=f"{name}:live", Qualifier="prod")
    assert "derived qualifier" in err.value.response["message"]


def test_region_comes_from_the_signature(create_function: CreateFunction, endpoint: str) -> None:
    name = create_function("echo")["FunctionName"]
    eu = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="eu-central-1",
        config=Config(retries={"max_attempts": 0}),
    )
    with pytest.raises(eu.exceptions.ResourceNotFoundException) as err:
        eu.get_function(FunctionName=name)
    assert "eu-central-1" in err.value.response["Message"]
    assert name not in [f["FunctionName"] for f in eu.list_functions()["Functions"]]


def test_create_by_arn(lambda_client: Any, unique_name: str) -> None:
    kwargs = {
        "Runtime": PYTHON_RUNTIME,
        "Role": ROLE,
        "Handler": "echo.handler",
        "Code": {"ZipFile": function_zip("echo")},
    }
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.create_function(
            FunctionName=f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{unique_name}", **kwargs
        )
    cfg = lambda_client.create_function(FunctionName=arn(unique_name), **kwargs)
    try:
        assert cfg["FunctionName"] == unique_name
        assert cfg["FunctionArn"] == arn(unique_name)
    finally:
        lambda_client.delete_function(FunctionName=unique_name)


# -- updates -----------------------------------------------------------------------------------


def test_update_function_code(create_function: CreateFunction, lambda_client: Any) -> None:
    created = create_function("echo", Timeout=SLOW_BOX_TIMEOUT)
    name = created["FunctionName"]
    before = lambda_client.get_function_configuration(FunctionName=name)
    new_code = make_zip({"echo.py": "def handler(event, context):\n    return {'v': 2}\n"})
    updated = lambda_client.update_function_code(FunctionName=name, ZipFile=new_code)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["State"] == "Active"
    assert updated["CodeSha256"] == base64.b64encode(hashlib.sha256(new_code).digest()).decode()
    assert updated["CodeSize"] == len(new_code)
    assert updated["RevisionId"] != before["RevisionId"]
    assert updated["LastModified"] >= before["LastModified"]
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
    after = lambda_client.get_function_configuration(FunctionName=name)
    assert after["LastUpdateStatus"] == "Successful"
    assert "LastUpdateStatusReason" not in after
    assert after["RevisionId"] not in (updated["RevisionId"], before["RevisionId"])
    _, body = invoke_json(lambda_client, name)
    assert body == {"v": 2}
    with urllib.request.urlopen(
        lambda_client.get_function(FunctionName=name)["Code"]["Location"], timeout=30
    ) as resp:
        assert resp.read() == new_code


def test_update_function_code_dry_run_changes_nothing(
    create_function: CreateFunction, lambda_client: Any
) -> None:
    name = create_function("echo")["FunctionName"]
    before = lambda_client.get_function_configuration(FunctionName=name)
    lambda_client.update_function_code(
        FunctionName=name, ZipFile=make_zip({"echo.py": "x = 1\n"}), DryRun=True
    )
    after = lambda_client.get_function_configuration(FunctionName=name)
    assert (after["CodeSha256"], after["RevisionId"]) == (
        before["CodeSha256"],
        before["RevisionId"],
    )


def test_update_function_configuration(create_function: CreateFunction, lambda_client: Any) -> None:
    name = create_function("echo", Environment={"Variables": {"A1": "one"}}, Description="d0")[
        "FunctionName"
    ]
    before = lambda_client.get_function_configuration(FunctionName=name)
    updated = lambda_client.update_function_configuration(
        FunctionName=name, Timeout=SLOW_BOX_TIMEOUT, MemorySize=256
    )
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["RevisionId"] != before["RevisionId"]
    assert (updated["Timeout"], updated["MemorySize"]) == (SLOW_BOX_TIMEOUT, 256)
    # Members that were absent are left as they were.
    assert updated["Environment"] == {"Variables": {"A1": "one"}}
    assert updated["Description"] == "d0"
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
    after = lambda_client.get_function(FunctionName=name)["Configuration"]
    assert after["LastUpdateStatus"] == "Successful"
    assert (after["Timeout"], after["MemorySize"]) == (SLOW_BOX_TIMEOUT, 256)
    _, body = invoke_json(lambda_client, name)
    assert body["memory_limit_in_mb"] == "256"
    assert body["env"]["A1"] == "one"


def test_empty_members_clear(create_function: CreateFunction, lambda_client: Any) -> None:
    name = create_function(
        "echo", Timeout=SLOW_BOX_TIMEOUT, Environment={"Variables": {"A1": "one"}}, Description="d0"
    )["FunctionName"]
    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {}}, Description=""
    )
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
    conf = lambda_client.get_function_configuration(FunctionName=name)
    assert conf.get("Environment", {}).get("Variables", {}) == {}
    assert conf["Description"] == ""
    _, body = invoke_json(lambda_client, name)
    assert "A1" not in body["env"]


def test_update_then_read_sees_new_environment(
    create_function: CreateFunction, lambda_client: Any
) -> None:
    name = create_function("echo", Timeout=SLOW_BOX_TIMEOUT)["FunctionName"]
    _, first = invoke_json(lambda_client, name)
    lambda_client.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"COLOR": "blue"}}
    )
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
    _, second = invoke_json(lambda_client, name)
    assert second["env"]["COLOR"] == "blue"
    assert first["calls"] == 1
    assert second["calls"] == 1  # a fresh environment: an update retires the warm one


def test_revision_id_guards_updates(create_function: CreateFunction, lambda_client: Any) -> None:
    created = create_function("echo")
    name = created["FunctionName"]
    stale = created["RevisionId"]  # the create response's; the record has changed since
    current = lambda_client.get_function_configuration(FunctionName=name)["RevisionId"]
    assert current != stale
    errors = lambda_client.exceptions
    with pytest.raises(errors.PreconditionFailedException) as err:
        lambda_client.update_function_configuration(FunctionName=name, Timeout=5, RevisionId=stale)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert err.value.response["Type"] == "User"
    assert "Revision Id provided does not match" in err.value.response["message"]
    with pytest.raises(errors.PreconditionFailedException):
        lambda_client.update_function_code(
            FunctionName=name, ZipFile=function_zip("echo"), RevisionId=stale
        )
    assert lambda_client.get_function_configuration(FunctionName=name)["Timeout"] == 3
    ok = lambda_client.update_function_configuration(
        FunctionName=name, Timeout=5, RevisionId=current
    )
    assert ok["Timeout"] == 5


# -- DeleteFunction ------------------------------------------------------------------------------


def test_delete_function(lambda_client: Any, unique_name: str) -> None:
    lambda_client.create_function(
        FunctionName=unique_name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler="echo.handler",
        Code={"ZipFile": function_zip("echo")},
        Timeout=SLOW_BOX_TIMEOUT,
    )
    lambda_client.get_waiter("function_active_v2").wait(
        FunctionName=unique_name, WaiterConfig=FAST_WAIT
    )
    invoke_json(lambda_client, unique_name)
    resp = lambda_client.delete_function(FunctionName=arn(unique_name))
    assert resp["ResponseMetadata"]["HTTPStatusCode"] in (200, 204)
    errors = lambda_client.exceptions
    with pytest.raises(errors.ResourceNotFoundException) as err:
        lambda_client.get_function(FunctionName=unique_name)
    assert err.value.response["Message"] == f"Function not found: {arn(unique_name)}"
    with pytest.raises(errors.ResourceNotFoundException):
        lambda_client.invoke(FunctionName=unique_name)
    with pytest.raises(errors.ResourceNotFoundException):
        lambda_client.delete_function(FunctionName=unique_name)
    # The name is free again.
    lambda_client.create_function(
        FunctionName=unique_name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler="echo.handler",
        Code={"ZipFile": function_zip("echo")},
    )
    lambda_client.delete_function(FunctionName=unique_name)


def test_delete_latest_qualifier_is_refused(
    create_function: CreateFunction, lambda_client: Any
) -> None:
    name = create_function("echo")["FunctionName"]
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.delete_function(FunctionName=name, Qualifier="$LATEST")
    lambda_client.get_function(FunctionName=name)


# -- ListFunctions -------------------------------------------------------------------------------


def test_list_functions_pages(create_function: CreateFunction, lambda_client: Any) -> None:
    prefix = f"list-{uuid.uuid4().hex[:8]}"
    names = sorted(create_function("echo", name=f"{prefix}-{i}")["FunctionName"] for i in range(7))

    # Hand-driven Marker/MaxItems.
    seen: list[str] = []
    marker: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"MaxItems": 3}
        if marker:
            kwargs["Marker"] = marker
        page = lambda_client.list_functions(**kwargs)
        pages += 1
        assert len(page["Functions"]) <= 3
        seen.extend(f["FunctionName"] for f in page["Functions"])
        marker = page.get("NextMarker")
        if not marker:
            break
        assert pages < 1000, "NextMarker never ends"
    mine = [n for n in seen if n.startswith(prefix)]
    assert mine == names
    assert len(seen) == len(set(seen))

    # boto3's paginator stops (no NextMarker on the last page).
    paginator = lambda_client.get_paginator("list_functions")
    via_paginator: list[str] = []
    for n, page in enumerate(paginator.paginate(PaginationConfig={"PageSize": 3})):
        assert n < 1000
        via_paginator.extend(f["FunctionName"] for f in page["Functions"])
    assert [n for n in via_paginator if n.startswith(prefix)] == names
    limited = paginator.paginate(
        PaginationConfig={"MaxItems": 3, "PageSize": 2}
    ).build_full_result()
    assert len(limited["Functions"]) == 3

    entry = next(
        f for f in lambda_client.list_functions()["Functions"] if f["FunctionName"] == names[0]
    )
    assert entry["FunctionArn"] == arn(names[0])
    assert entry["Version"] == "$LATEST"
    assert entry["CodeSha256"] and entry["Runtime"] == PYTHON_RUNTIME
    for absent in ("State", "LastUpdateStatus", "RuntimeVersionConfig"):  # as AWS lists them
        assert absent not in entry


def test_list_functions_bad_parameters(lambda_client: Any, endpoint: str) -> None:
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.list_functions(Marker="%%%not-a-marker%%%")
    for query in ("MaxItems=0", "MaxItems=abc", "MaxItems=-1"):
        status, _headers, _body = raw(endpoint, "GET", f"/2015-03-31/functions?{query}")
        assert status == 400, query


# -- concurrency and account settings ------------------------------------------------------------


def test_reserved_concurrency(create_function: CreateFunction, lambda_client: Any) -> None:
    a = create_function("echo")["FunctionName"]
    b = create_function("echo")["FunctionName"]
    base = lambda_client.get_account_settings()
    assert base["AccountLimit"]["ConcurrentExecutions"] == 50
    unreserved = base["AccountLimit"]["UnreservedConcurrentExecutions"]
    assert base["AccountUsage"]["FunctionCount"] >= 2
    try:
        assert (
            lambda_client.get_function_concurrency(FunctionName=a).get(
                "ReservedConcurrentExecutions"
            )
            is None
        )
        put = lambda_client.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=5)
        assert put["ReservedConcurrentExecutions"] == 5
        got = lambda_client.get_function_concurrency(FunctionName=arn(a))
        assert got["ReservedConcurrentExecutions"] == 5
        assert lambda_client.get_function(FunctionName=a)["Concurrency"] == {
            "ReservedConcurrentExecutions": 5
        }
        after = lambda_client.get_account_settings()["AccountLimit"]
        assert after["UnreservedConcurrentExecutions"] == unreserved - 5

        # Floor is 10 of 50: b may take what is left above the floor, not one more.
        room = unreserved - 5 - 10
        with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as err:
            lambda_client.put_function_concurrency(
                FunctionName=b, ReservedConcurrentExecutions=room + 1
            )
        assert "minimum value of [10]" in err.value.response["message"]
        lambda_client.put_function_concurrency(FunctionName=b, ReservedConcurrentExecutions=room)
        assert (
            lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
            == 10
        )
        # Re-setting a's own reservation does not count it twice.
        lambda_client.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=5)
        lambda_client.delete_function_concurrency(FunctionName=b)

        with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
            lambda_client.put_function_concurrency(
                FunctionName=f"{a}:$LATEST", ReservedConcurrentExecutions=1
            )

        resp = lambda_client.delete_function_concurrency(FunctionName=a)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
        assert "ReservedConcurrentExecutions" not in lambda_client.get_function_concurrency(
            FunctionName=a
        )
        assert "Concurrency" not in lambda_client.get_function(FunctionName=a)
        assert (
            lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
            == unreserved
        )
    finally:
        for fn in (a, b):
            lambda_client.delete_function_concurrency(FunctionName=fn)


def test_reserved_concurrency_of_missing_function(lambda_client: Any) -> None:
    errors = lambda_client.exceptions
    with pytest.raises(errors.ResourceNotFoundException):
        lambda_client.put_function_concurrency(
            FunctionName="nope-nope", ReservedConcurrentExecutions=1
        )
    with pytest.raises(errors.ResourceNotFoundException):
        lambda_client.get_function_concurrency(FunctionName="nope-nope")
    with pytest.raises(errors.ResourceNotFoundException):
        lambda_client.delete_function_concurrency(FunctionName="nope-nope")


def test_deleting_a_function_frees_its_reservation(lambda_client: Any, unique_name: str) -> None:
    unreserved = lambda_client.get_account_settings()["AccountLimit"][
        "UnreservedConcurrentExecutions"
    ]
    lambda_client.create_function(
        FunctionName=unique_name,
        Runtime=PYTHON_RUNTIME,
        Role=ROLE,
        Handler="echo.handler",
        Code={"ZipFile": function_zip("echo")},
    )
    try:
        lambda_client.put_function_concurrency(
            FunctionName=unique_name, ReservedConcurrentExecutions=3
        )
    finally:
        lambda_client.delete_function(FunctionName=unique_name)
    after = lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    assert after == unreserved


# -- restart persistence ------------------------------------------------------------------------


def test_functions_survive_a_restart(tmp_path: Path) -> None:
    server = LaminaProcess(tmp_path / "data")
    server.start()
    try:
        client = client_for(server.endpoint)
        made: dict[str, dict[str, Any]] = {}
        for i, extra in enumerate(
            (
                {"Timeout": SLOW_BOX_TIMEOUT},
                {
                    "Timeout": 59,
                    "MemorySize": 300,
                    "Description": "kept",
                    "Environment": {"Variables": {"KEPT": "yes"}},
                    "Tags": {"k": "v"},
                },
            )
        ):
            name = f"persist-{i}"
            client.create_function(
                FunctionName=name,
                Runtime=PYTHON_RUNTIME,
                Role=ROLE,
                Handler="echo.handler",
                Code={"ZipFile": function_zip("echo")},
                **extra,
            )
            client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        client.put_function_concurrency(FunctionName="persist-1", ReservedConcurrentExecutions=2)
        client.update_function_configuration(FunctionName="persist-0", Description="updated")
        client.get_waiter("function_updated_v2").wait(
            FunctionName="persist-0", WaiterConfig=FAST_WAIT
        )
        for name in ("persist-0", "persist-1"):
            made[name] = client.get_function(FunctionName=name)
            made[name].pop("ResponseMetadata")
            made[name]["Code"].pop("Location")
        # uvicorn re-raises the signal after a graceful shutdown, so -SIGTERM is a clean exit too.
        assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
        poll(lambda: list(server.output), lambda out: any("shutdown complete" in x for x in out))

        server.start()
        client = client_for(server.endpoint)
        listed = sorted(f["FunctionName"] for f in client.list_functions()["Functions"])
        assert listed == ["persist-0", "persist-1"]
        for name, before in made.items():
            after = client.get_function(FunctionName=name)
            after.pop("ResponseMetadata")
            after["Code"].pop("Location")
            assert after == before
        assert made["persist-0"]["Configuration"]["Description"] == "updated"
        resp, body = invoke_json(client, "persist-1", {"after": "restart"})
        assert resp["StatusCode"] == 200 and "FunctionError" not in resp
        assert body["event"] == {"after": "restart"}
        assert body["env"]["KEPT"] == "yes"
        assert body["memory_limit_in_mb"] == "300"
        _, body = invoke_json(client, "persist-0")
        assert body["event"] == {}
    finally:
        server.stop()
