"""Returns a value of the kind the event names, to check how results are marshalled."""

import decimal


def handler(event, context):
    kind = event["kind"]
    if kind == "none":
        return None
    if kind == "str":
        return "hello"
    if kind == "list":
        return [1, "two", None]
    if kind == "int":
        return 42
    if kind == "float":
        return 2.5
    if kind == "bytes":
        return b"\x00raw bytes\xff"
    if kind == "decimal":
        return {"whole": decimal.Decimal("3"), "part": decimal.Decimal("1.5")}
    if kind == "unserialisable":
        return {"value": object()}
    raise ValueError(f"unknown kind {kind}")
