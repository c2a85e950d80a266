"""Create/Get/Update/Delete/ListEventSourceMappings: the wire side of lamina.sources.mappings."""

from __future__ import annotations

from typing import Any

from lamina.api.http import Request, Response, Router, json_response
from lamina.api.shapes import check_container_members
from lamina.errors import ValidationException
from lamina.sources.mappings import MappingEntry, Mappings

BASE = "/2015-03-31/event-source-mappings"


def mapping_shape(entry: MappingEntry, members: frozenset[str]) -> dict[str, Any]:
    """EventSourceMappingConfiguration; `members` are the optional members of the mapping's kind."""
    m = entry.config
    out: dict[str, Any] = {"UUID": m.uuid}
    if m.event_source_arn:
        out["EventSourceArn"] = m.event_source_arn
    out.update(
        {
            "FunctionArn": m.function_arn,
            "BatchSize": m.batch_size,
            "MaximumBatchingWindowInSeconds": m.max_batching_window_s,
            "LastModified": round(m.last_modified, 3),
            "LastProcessingResult": entry.status.last_result,
            "State": entry.state,
            "StateTransitionReason": entry.state_reason,
            "EventSourceMappingArn": m.arn,
        }
    )
    if "FunctionResponseTypes" in members:
        out["FunctionResponseTypes"] = list(m.function_response_types)
    if m.filters and "FilterCriteria" in members:
        out["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in m.filters]}
    if m.max_concurrency is not None and "ScalingConfig" in members:
        out["ScalingConfig"] = {"MaximumConcurrency": m.max_concurrency}
    if "StartingPosition" in members and m.starting_position:
        out["StartingPosition"] = m.starting_position
        if m.starting_position_timestamp is not None:
            out["StartingPositionTimestamp"] = m.starting_position_timestamp
    for member, value in (
        ("ParallelizationFactor", m.parallelization_factor),
        ("MaximumRecordAgeInSeconds", m.max_record_age_s),
        ("MaximumRetryAttempts", m.max_retry_attempts),
        ("BisectBatchOnFunctionError", m.bisect_on_error),
        ("TumblingWindowInSeconds", m.tumbling_window_s),
    ):
        if member in members:
            out[member] = value
    if "DestinationConfig" in members:
        failure = {"Destination": m.on_failure} if m.on_failure else {}
        out["DestinationConfig"] = {"OnFailure": failure}
    if m.queues:
        out["Queues"] = list(m.queues)
    if m.topics:
        out["Topics"] = list(m.topics)
    if m.source_access:
        out["SourceAccessConfigurations"] = [dict(a) for a in m.source_access]
    if m.endpoints:
        out["SelfManagedEventSource"] = {"Endpoints": {k: list(v) for k, v in m.endpoints.items()}}
    for member, value in m.extra.items():
        if member != "Tags":
            out.setdefault(member, value)
    return out


class EventSourceMappingsAPI:
    def __init__(self, mappings: Mappings) -> None:
        self.mappings = mappings

    def mount(self, router: Router) -> None:
        # Older botocore models (and the AWS CLI versions built on them) end these two URIs
        # with a slash.
        for base in (BASE, BASE + "/"):
            router.add("POST", base, self.create)
            router.add("GET", base, self.list)
        router.add("GET", BASE + "/{uuid}", self.get)
        router.add("PUT", BASE + "/{uuid}", self.update)
        router.add("DELETE", BASE + "/{uuid}", self.delete)

    def _shape(self, entry: MappingEntry) -> dict[str, Any]:
        kind = self.mappings.kind_of(entry)
        return mapping_shape(entry, kind.output_members if kind else frozenset())

    async def create(self, req: Request) -> Response:
        body = req.json()
        check_container_members("CreateEventSourceMapping", body)
        entry = await self.mappings.create(req.region, body)
        return json_response(self._shape(entry), 202)

    async def get(self, req: Request) -> Response:
        return json_response(self._shape(self.mappings.get(req.region, _uuid(req))))

    async def update(self, req: Request) -> Response:
        body = req.json()
        check_container_members("UpdateEventSourceMapping", body)
        entry = await self.mappings.update(req.region, _uuid(req), body)
        return json_response(self._shape(entry), 202)

    async def delete(self, req: Request) -> Response:
        entry = await self.mappings.delete(req.region, _uuid(req))
        return json_response(self._shape(entry), 202)

    async def list(self, req: Request) -> Response:
        raw = req.query_one("MaxItems")
        if raw is not None and not (raw.isdecimal() and 1 <= int(raw) <= 10_000):
            raise ValidationException(
                f"1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy "
                "constraint: Member must have value between 1 and 10000"
            )
        page, marker = self.mappings.list_page(
            req.region,
            event_source_arn=req.query_one("EventSourceArn"),
            function_name=req.query_one("FunctionName"),
            marker=req.query_one("Marker"),
            max_items=int(raw) if raw else None,
        )
        out: dict[str, Any] = {"EventSourceMappings": [self._shape(e) for e in page]}
        if marker:
            out["NextMarker"] = marker
        return json_response(out)


def _uuid(req: Request) -> str:
    value = req.params["uuid"]
    if len(value) != 36:
        raise ValidationException(
            f"1 validation error detected: Value '{value}' at 'UUID' failed to satisfy "
            "constraint: Member must have length "
            + ("less than or equal to 36" if len(value) > 36 else "greater than or equal to 36")
        )
    return value
