"""Lamina's bucket API: host folders as S3-style buckets and their notification configurations.

    PUT    /lamina/v1/buckets/{name}               {"Path": "/abs/folder"}   create (idempotent)
    GET    /lamina/v1/buckets                                                list
    GET    /lamina/v1/buckets/{name}                                         describe
    DELETE /lamina/v1/buckets/{name}                                         delete (files stay)
    PUT    /lamina/v1/buckets/{name}/notification  {"LambdaFunctionConfigurations": [...]}
    GET    /lamina/v1/buckets/{name}/notification

The notification body is S3's NotificationConfiguration (JSON, as `aws s3api
put-bucket-notification-configuration` takes it); errors are Lambda's JSON errors.
"""

from __future__ import annotations

from typing import Any

from lamina.api.http import Request, Response, Router, empty, json_response
from lamina.errors import InvalidParameterValueException
from lamina.triggers.buckets import Bucket, Buckets

BASE = "/lamina/v1/buckets"


def notification_shape(bucket: Bucket) -> dict[str, object]:
    return {"LambdaFunctionConfigurations": [c.shape() for c in bucket.notifications]}


def _check_notification_shapes(body: dict[str, Any]) -> None:
    """The JSON types of a notification configuration, before its rules are read (a string
    where an object belongs was a 500 there)."""
    configs = body.get("LambdaFunctionConfigurations")
    if not isinstance(configs, list | None):
        raise InvalidParameterValueException("LambdaFunctionConfigurations must be a list.")
    for item in configs or ():
        if not isinstance(item, dict):
            raise InvalidParameterValueException("Each configuration must be an object.")
        events = item.get("Events")
        if events is not None and not (
            isinstance(events, list) and all(isinstance(e, str) for e in events)
        ):
            raise InvalidParameterValueException("Events must be a list of event types.")
        rules: Any = item.get("Filter")
        for key in ("Key", "FilterRules"):
            if rules is None:
                break
            if not isinstance(rules, dict):
                raise InvalidParameterValueException(
                    'Filter must be {"Key": {"FilterRules": [...]}}.'
                )
            rules = rules.get(key)
        if rules is not None and not (
            isinstance(rules, list) and all(isinstance(r, dict) for r in rules)
        ):
            raise InvalidParameterValueException(
                "Filter.Key.FilterRules must be a list of objects."
            )


class BucketsAPI:
    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets

    def mount(self, router: Router) -> None:
        router.add("GET", BASE, self.list)
        router.add("PUT", BASE + "/{name}", self.create)
        router.add("GET", BASE + "/{name}", self.get)
        router.add("DELETE", BASE + "/{name}", self.delete)
        router.add("PUT", BASE + "/{name}/notification", self.put_notification)
        router.add("GET", BASE + "/{name}/notification", self.get_notification)

    async def list(self, req: Request) -> Response:
        return json_response({"Buckets": [b.shape() for b in self.buckets.all()]})

    async def create(self, req: Request) -> Response:
        bucket, created = await self.buckets.create(req.params["name"], req.region, req.json())
        return json_response(bucket.shape(), 201 if created else 200)

    async def get(self, req: Request) -> Response:
        return json_response(self.buckets.get(req.params["name"]).shape())

    async def delete(self, req: Request) -> Response:
        await self.buckets.delete(req.params["name"])
        return empty(204)

    async def put_notification(self, req: Request) -> Response:
        body = req.json()
        _check_notification_shapes(body)
        bucket = await self.buckets.put_notifications(req.params["name"], body)
        return json_response(notification_shape(bucket))

    async def get_notification(self, req: Request) -> Response:
        return json_response(notification_shape(self.buckets.get(req.params["name"])))
