"""Lambda's configuration limits (lamina/control/validation.py) as pure checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lamina.control import validation
from lamina.errors import InvalidParameterValueException

ROLE = "arn:aws:iam::123456789012:role/service-role/my-role"


def refused(fn: Any, *args: Any) -> str:
    with pytest.raises(InvalidParameterValueException) as err:
        fn(*args)
    assert err.value.status == 400
    assert err.value.code == "InvalidParameterValueException"
    return err.value.message


@pytest.mark.parametrize("value", [128, 129, 1769, 10240])
def test_memory_in_range(value: int) -> None:
    assert validation.memory_mb(value) == value


@pytest.mark.parametrize("value", [127, 10241, 0, -1, "256", 256.0, True, None])
def test_memory_out_of_range_or_not_int(value: Any) -> None:
    message = refused(validation.memory_mb, value)
    assert "memorySize" in message


def test_memory_messages_name_the_bound() -> None:
    assert "greater than or equal to 128" in refused(validation.memory_mb, 127)
    assert "less than or equal to 10240" in refused(validation.memory_mb, 10241)


@pytest.mark.parametrize("value", [1, 3, 900])
def test_timeout_in_range(value: int) -> None:
    assert validation.timeout_s(value) == value


@pytest.mark.parametrize("value", [0, 901, 5400, "3", None])
def test_timeout_refused(value: Any) -> None:
    assert "timeout" in refused(validation.timeout_s, value)


def test_ephemeral_storage() -> None:
    assert validation.ephemeral_mb({"Size": 512}) == 512
    assert validation.ephemeral_mb({"Size": 10240}) == 10240
    for bad in ({"Size": 511}, {"Size": 10241}, {}, {"Size": "1024"}, None, 1024):
        assert "ephemeralStorage.size" in refused(validation.ephemeral_mb, bad)


@pytest.mark.parametrize(
    "value",
    [ROLE, "arn:aws:iam::123456789012:role/r", "arn:aws-cn:iam::123456789012:role/a+b=c,d.e@f-g"],
)
def test_role_accepted(value: str) -> None:
    assert validation.role(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "r1",
        "",
        None,
        "arn:aws:iam::12345:role/r",
        "arn:aws:iam::123456789012:user/u",
        "arn:aws:s3:::bucket",
        "arn:aws:iam::123456789012:role",
    ],
)
def test_role_refused(value: Any) -> None:
    assert "'role'" in refused(validation.role, value)


@pytest.mark.parametrize(
    ("value", "runtime"),
    [
        ("app.handler", "python3.12"),
        ("pkg.sub.mod.fn", "python3.11"),
        ("pkg/mod.fn", "python3.11"),
        ("index.handler", "nodejs20.x"),
        ("bootstrap", "provided.al2023"),
        ("anything-goes", "provided.al2"),
    ],
)
def test_handler_accepted(value: str, runtime: str) -> None:
    assert validation.handler(value, runtime) == value


@pytest.mark.parametrize(
    ("value", "runtime"),
    [
        ("", "python3.12"),
        ("has space.fn", "python3.12"),
        ("tab\t.fn", "python3.12"),
        ("nodot", "python3.12"),
        ("x" * 129, "provided.al2023"),
        (None, "python3.12"),
        (5, "python3.12"),
    ],
)
def test_handler_refused(value: Any, runtime: str) -> None:
    refused(validation.handler, value, runtime)


def test_handler_message_says_module_function() -> None:
    assert "module.function" in refused(validation.handler, "nodot", "python3.12")


def test_description() -> None:
    assert validation.description("") == ""
    assert validation.description("d" * 256) == "d" * 256
    assert "description" in refused(validation.description, "d" * 257)
    refused(validation.description, None)


def test_architectures() -> None:
    assert validation.architectures(["x86_64"]) == ("x86_64",)
    assert validation.architectures(["arm64"]) == ("arm64",)
    for bad in ([], ["x86_64", "arm64"], ["sparc"], "x86_64", None):
        assert "architectures" in refused(validation.architectures, bad)


class TestEnvironment:
    def test_absent_and_empty(self) -> None:
        assert validation.environment(None) is None
        assert validation.environment({}) == {}
        assert validation.environment({"Variables": {}}) == {}

    def test_plain_variables(self) -> None:
        env = {"Variables": {"GREETING": "hi", "a1": "", "Key_2": "x=y"}}
        assert validation.environment(env) == env["Variables"]

    @pytest.mark.parametrize("key", ["1ABC", "_X", "A-B", "A B", "A", "é1"])
    def test_key_pattern(self, key: str) -> None:
        message = refused(validation.environment, {"Variables": {key: "v"}})
        assert "[a-zA-Z]([a-zA-Z0-9_])+" in message

    @pytest.mark.parametrize(
        "key", sorted(validation.RESERVED_ENV_KEYS - {"_HANDLER", "_X_AMZN_TRACE_ID"})
    )
    def test_reserved_keys(self, key: str) -> None:
        message = refused(validation.environment, {"Variables": {key: "v", "OK": "1"}})
        assert "reserved keys" in message
        assert message.endswith(f"Reserved keys used in this request: {key}")

    def test_reserved_keys_listed_together(self) -> None:
        message = refused(
            validation.environment, {"Variables": {"AWS_REGION": "x", "AWS_ACCESS_KEY_ID": "y"}}
        )
        assert message.endswith("AWS_ACCESS_KEY_ID, AWS_REGION")

    def test_size_limit_is_4kb_of_compact_json(self) -> None:
        # {"K":"<v>"} is 8 bytes of framing around the value.
        at_limit = {"KK": "v" * (4096 - len('{"KK":""}'))}
        assert len(json.dumps(at_limit, separators=(",", ":"))) == 4096
        assert validation.environment({"Variables": at_limit}) == at_limit
        over = {"KK": at_limit["KK"] + "v"}
        message = refused(validation.environment, {"Variables": over})
        assert "exceeded the 4KB limit" in message
        assert "String measured: " in message

    def test_values_must_be_strings(self) -> None:
        refused(validation.environment, {"Variables": {"KEY": 1}})

    def test_not_a_structure(self) -> None:
        refused(validation.environment, "A=1")
        refused(validation.environment, {"Variables": ["A=1"]})


def test_layers() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:layer:l:1"
    assert validation.layers([]) == ()
    assert validation.layers([arn] * 5) == (arn,) * 5
    assert "more than 5 layers" in refused(validation.layers, [arn] * 6)
    refused(validation.layers, arn)
    refused(validation.layers, [1])


AVAILABLE: dict[str, str | None] = {
    "python3.11": None,
    "provided.al2023": None,
    "python3.14": "no python3.14 interpreter found (install python3.14 and put it on PATH)",
    "nodejs20.x": "Node.js runtimes are not available in this version of Lamina",
}


def test_runtime_runnable() -> None:
    assert validation.runtime("python3.11", AVAILABLE) == "python3.11"
    assert validation.runtime("provided.al2023", AVAILABLE) == "provided.al2023"


@pytest.mark.parametrize("value", ["python9.9", "PYTHON3.11", "", None, 3.11, ["python3.11"]])
def test_runtime_unknown(value: Any) -> None:
    message = refused(validation.runtime, value, AVAILABLE)
    assert "at 'runtime' failed to satisfy constraint" in message
    assert "python3.11" in message


def test_runtime_known_but_not_runnable_names_what_is_missing() -> None:
    message = refused(validation.runtime, "python3.14", AVAILABLE)
    assert "python3.14" in message
    assert "no python3.14 interpreter found" in message
    assert "python3.11" in message and "provided.al2023" in message  # what this host can run
    assert "nodejs20.x" not in message.split("can run:")[-1]
    assert "Node.js" in refused(validation.runtime, "nodejs20.x", AVAILABLE)


def test_logging_config() -> None:
    assert validation.logging_config({}) == {"LogFormat": "Text"}
    assert validation.logging_config({"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"}) == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "DEBUG",
    }
    assert validation.logging_config({"LogGroup": "/custom/group"})["LogGroup"] == "/custom/group"
    refused(validation.logging_config, {"LogFormat": "XML"})
    assert "JSON LogFormat" in refused(validation.logging_config, {"SystemLogLevel": "WARN"})
    refused(validation.logging_config, "Text")


def test_int_in_range_rejects_bool() -> None:
    refused(validation.int_in_range, True, "x", 0, 10)
    assert validation.int_in_range(0, "x", 0, 10) == 0


def test_tracing_mode() -> None:
    assert validation.tracing_mode({"Mode": "Active"}) == "Active"
    assert validation.tracing_mode({}) == "PassThrough"
    assert validation.tracing_mode(None) == "PassThrough"
    for bad in ("Active", {"Mode": "On"}, {"Mode": 1}):
        refused(validation.tracing_mode, bad)


def test_dead_letter_target() -> None:
    target = "arn:aws:sqs:us-east-1:123456789012:dlq"
    assert validation.dead_letter_target({"TargetArn": target}) == target
    assert validation.dead_letter_target({"TargetArn": ""}) is None  # clears
    assert validation.dead_letter_target({}) is None
    for bad in (target, {"TargetArn": 5}):
        refused(validation.dead_letter_target, bad)


def test_tags() -> None:
    assert validation.tags(None) == {}
    assert validation.tags({"team": "core", "empty": ""}) == {"team": "core", "empty": ""}
    assert validation.tags({f"k{i}": "v" for i in range(50)})
    assert "tag limit" in refused(validation.tags, {f"k{i}": "v" for i in range(51)})
    for bad in ("team=core", ["team"], {"team": 1}, {"": "v"}, {"k" * 129: "v"}, {"k": "v" * 257}):
        refused(validation.tags, bad)
