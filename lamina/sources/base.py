"""What an event source implements, and how the polling framework drives it.

A *mapping* (EventSourceMapping) joins one event source to one function. Its settings are a
frozen `MappingConfig`. The API finds the `SourceKind` that claims a request (by the ARN's
service, or by a self-managed endpoint key), lets the kind check and complete the settings, and
persists the mapping. While the mapping is enabled the poller (`lamina.sources.poller`) asks the
kind to `open` its sources and drives each `Source` in one of two ways:

Queues (`kind.ordered` is False): several batch workers (ScalingConfig.MaximumConcurrency) share
one source. Each worker `fetch`es a batch, drops what the FilterCriteria do not match
(`acknowledge`d: deleted, as Lambda deletes them), invokes the function once with
`source.event(records)`, then `acknowledge`s what succeeded and `release`s what failed (they come
back later: a visibility timeout, a nack with requeue). A function error fails the whole batch,
unless ReportBatchItemFailures names the failed `Record.id`s. A throttle backs off and retries the
same batch; nothing is acknowledged before the function has succeeded.

Ordered streams (`kind.ordered` is True): one worker per source, one batch at a time, in order.
A failed batch is retried *in memory* (never refetched) until it succeeds, MaximumRetryAttempts
or MaximumRecordAgeInSeconds run out; with BisectBatchOnFunctionError it is split in halves
first; with ReportBatchItemFailures the records before the first failed id are acknowledged and
the retry starts at it. Records given up are sent as a pointer record to the OnFailure
destination (`source.failure_info`) and acknowledged only once that record was delivered: while
the destination cannot take it, the shard waits (the send is retried with backoff). `acknowledge` is the checkpoint: an ordered
source must persist "everything up to and including the last of these records is done" (the
`Checkpoints` store is there for that) so that after a restart it resumes after it: at least once.
`release` on an ordered source means "rewind": the next fetch starts again after the checkpoint.

Failures of the source itself (broker down, stream gone, bad credentials) are raised as
`SourceUnavailable` with the text Lambda shows in LastProcessingResult ("PROBLEM: ..."); the
poller reports it, closes the sources, waits with exponential backoff and opens them again. It
never lets a source's failure end the server.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lamina.errors import InvalidParameterValueException

if TYPE_CHECKING:
    from lamina.queues import Queues

# -- states, as Lambda names them --------------------------------------------------------------

CREATING = "Creating"
ENABLING = "Enabling"
ENABLED = "Enabled"
DISABLING = "Disabling"
DISABLED = "Disabled"
UPDATING = "Updating"
DELETING = "Deleting"

USER_INITIATED = "USER_INITIATED"  # StateTransitionReason after an API call

# LastProcessingResult values
NO_RECORDS = "No records processed"
PROCESSING_OK = "OK"


def problem(text: str) -> str:
    """A LastProcessingResult for a failure, as Lambda words them ("PROBLEM: ...")."""
    return f"PROBLEM: {text}"


REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # a batch is one synchronous invoke


# -- the mapping's settings --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingConfig:
    """One event source mapping as stored. Wire member names in comments where they differ."""

    uuid: str
    region: str
    account_id: str
    kind: str  # the SourceKind.name that owns it
    function_arn: str  # FunctionArn: as named (qualified when a version or alias was given)
    event_source_arn: str | None = None  # EventSourceArn
    batch_size: int
    max_batching_window_s: int = 0  # MaximumBatchingWindowInSeconds
    enabled: bool = True
    filters: tuple[str, ...] = ()  # FilterCriteria.Filters[].Pattern, as given (JSON text)
    function_response_types: tuple[str, ...] = ()
    max_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency
    # ordered streams
    starting_position: str | None = None  # TRIM_HORIZON | LATEST | AT_TIMESTAMP
    starting_position_timestamp: float | None = None
    max_record_age_s: int = -1  # MaximumRecordAgeInSeconds; -1: unlimited
    max_retry_attempts: int = -1  # MaximumRetryAttempts; -1: until the record expires
    bisect_on_error: bool = False  # BisectBatchOnFunctionError
    parallelization_factor: int = 1
    tumbling_window_s: int = 0
    on_failure: str | None = None  # DestinationConfig.OnFailure.Destination
    # brokers and self-managed sources
    queues: tuple[str, ...] = ()  # Queues
    topics: tuple[str, ...] = ()  # Topics
    source_access: tuple[Mapping[str, str], ...] = ()  # SourceAccessConfigurations [{Type, URI}]
    endpoints: Mapping[str, tuple[str, ...]] | None = None  # SelfManagedEventSource.Endpoints
    # wire members stored and echoed but not acted upon (Tags, KMSKeyArn, MetricsConfig, ...)
    extra: Mapping[str, Any] = field(default_factory=dict)
    last_modified: float = 0.0

    @property
    def arn(self) -> str:
        """EventSourceMappingArn."""
        return f"arn:aws:lambda:{self.region}:{self.account_id}:event-source-mapping:{self.uuid}"

    @property
    def reports_item_failures(self) -> bool:
        return REPORT_BATCH_ITEM_FAILURES in self.function_response_types

    def access(self, kind: str) -> str | None:
        """The URI of the SourceAccessConfiguration of this Type (BASIC_AUTH, VIRTUAL_HOST...)."""
        for item in self.source_access:
            if item.get("Type") == kind:
                return item.get("URI")
        return None


# -- records and sources -----------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    """One message or stream record as fetched.

    `id` is what a function names in batchItemFailures[].itemIdentifier (an SQS messageId, a
    stream's sequence number). `payload` is the record in the shape the function's event carries.
    `filter_view` is what FilterCriteria patterns are matched against: the record with its
    body/data parsed as JSON when it is JSON (Lambda's rule); None means `payload`. `handle` is the
    source's own (a receipt handle, a delivery tag, a stream position). `arrived_s` is the epoch
    time the record entered the source (MaximumRecordAgeInSeconds counts from it).
    """

    id: str
    payload: dict[str, Any]
    handle: Any = None
    size: int = 0
    arrived_s: float = 0.0
    filter_view: dict[str, Any] | None = None


class SourceUnavailable(Exception):
    """The source cannot be read or acknowledged now; `reason` is shown as LastProcessingResult.

    `permanent` marks what retrying will not fix soon (the queue was deleted, credentials are
    refused): the poller backs off to its longest wait at once.
    """

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class DestinationUnavailable(Exception):
    """An OnFailure record could not be delivered (the destination queue or function does not
    exist, or refused it). The batch is not skipped: the poller keeps it and tries again.
    `reason` is shown in LastProcessingResult."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Source(Protocol):
    """One readable source of a mapping (a queue; a stream or one partition of it)."""

    async def connect(self) -> None:
        """Open connections; raise SourceUnavailable when the source cannot be reached."""

    async def fetch(self, max_records: int, window_s: float) -> list[Record]:
        """Up to `max_records` records. Waits up to `window_s` (MaximumBatchingWindowInSeconds)
        to fill the batch once a first record is there, and otherwise returns within a long-poll
        interval of its choosing (at most ~20 s) with what it has, possibly nothing, so that the
        poller can notice a disable or shutdown."""
        ...

    async def acknowledge(self, records: Sequence[Record]) -> None:
        """Done with these (processed, filtered out or given up): delete, ack, or checkpoint."""

    async def release(self, records: Sequence[Record]) -> None:
        """Give these back for a later delivery (queues), or rewind to the checkpoint (streams)."""

    def event(self, records: Sequence[Record]) -> dict[str, Any]:
        """The invocation event for a batch, e.g. {"Records": [...]}."""
        ...

    def failure_info(self, records: Sequence[Record]) -> dict[str, Any]:
        """Ordered sources: the batch pointer of an OnFailure record, e.g.
        {"KinesisBatchInfo": {...}}. Queue sources may return {}."""
        ...

    async def close(self) -> None:
        """Release connections. Unacknowledged records return to the source by its own rules."""


# -- what a kind may use ------------------------------------------------------------------------


class Checkpoints(Protocol):
    """Durable positions of ordered sources, per mapping and partition (kept in Lamina's database
    and removed with the mapping)."""

    async def load(self, mapping_uuid: str, partition: str) -> str | None: ...

    async def save(self, mapping_uuid: str, partition: str, position: str) -> None: ...


class Secrets(Protocol):
    """Resolves the secret a SourceAccessConfiguration names (BASIC_AUTH and the like).

    Lamina has no Secrets Manager; see docs/event-sources.md for where secrets are read from.
    Raises SourceUnavailable(permanent=True) when the secret is missing or malformed.
    """

    def read(self, uri: str) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What the server lends to source kinds."""

    account_id: str
    data_dir: Path
    checkpoints: Checkpoints
    secrets: Secrets
    queues: Queues | None = None
    function_timeout_s: Callable[[MappingConfig], int] = lambda _m: 3
    # how many instances the mapping's function may run at once (reserved concurrency, else the
    # account's unreserved pool): a queue mapping's ceiling without MaximumConcurrency
    function_concurrency: Callable[[MappingConfig], int] = lambda _m: 1000


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """The members of a Create/UpdateEventSourceMapping body that decide the kind."""

    event_source_arn: str | None
    endpoints: Mapping[str, Any] | None  # SelfManagedEventSource.Endpoints


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceKind:
    """A kind of event source: how to recognise it, its limits, and how to open it.

    `claims` decides from a CreateEventSourceMapping request whether this kind serves it.
    `check` validates a complete MappingConfig (called on create and on every update, after the
    common checks) and may return it completed (defaults, normalised values); it raises
    InvalidParameterValueException with Lambda's wording. `open` builds the sources of an
    enabled mapping (queues: one; ordered streams: one per partition). `output_members` are the
    optional wire members this kind takes in Create/Update and GetEventSourceMapping shows (AWS
    shows an SQS mapping with fewer members than a stream mapping); any other optional member
    (StartingPosition, DestinationConfig, ScalingConfig, ...) is refused with Lambda's
    "Unsupported <Member> parameter for given event source mapping type.". `describe` words the source in the 409 for a
    duplicate mapping; `same_source` says whether two mappings read the same source.
    """

    name: str  # "sqs", "rmq", ...
    event_source: str  # eventSource in records: "aws:sqs", "aws:rmq"
    ordered: bool
    default_batch_size: int
    max_batch_size: int
    claims: Callable[[CreateRequest], bool]
    open: Callable[[MappingConfig, SourceContext], Awaitable[list[Source]]]
    check: Callable[[MappingConfig, SourceContext], Awaitable[MappingConfig]] | None = None
    # After a mapping is deleted: drop what the kind installed for it at the source (a consumer
    # group, a trigger). Best effort: a failure is logged, the mapping is gone either way.
    remove: Callable[[MappingConfig, SourceContext], Awaitable[None]] | None = None
    output_members: frozenset[str] = frozenset()
    describe: Callable[[MappingConfig], str] = lambda m: f'EventSource ("{m.event_source_arn}")'
    default_window_s: int = 0
    # queue kinds: whether the poller scales the batches in flight with the backlog (SQS, as
    # Lambda's SQS poller); otherwise it keeps MaximumConcurrency (or 5) workers throughout
    scales: bool = False


class SourceKinds:
    """The kinds the API dispatches on, in the order they were registered (built in server.py)."""

    def __init__(self) -> None:
        self._kinds: dict[str, SourceKind] = {}

    def register(self, kind: SourceKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"source kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> SourceKind:
        return self._kinds[name]

    def names(self) -> list[str]:
        return list(self._kinds)

    def claim(self, request: CreateRequest) -> SourceKind:
        for kind in self._kinds.values():
            if kind.claims(request):
                return kind
        raise InvalidParameterValueException("Unrecognized event source.")


def arn_service(arn: str | None) -> str | None:
    """The service of an ARN (`sqs` of arn:aws:sqs:...), or None."""
    if not arn:
        return None
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None
    return parts[2]


# -- the function's answer ---------------------------------------------------------------------


def failed_items(response: bytes, batch_ids: Sequence[str]) -> list[str] | None:
    """The ids a ReportBatchItemFailures response names, in batch order; None: the whole batch
    failed (the response is malformed, names an empty or unknown id, or is not JSON).

    An empty or null response, or an empty or null list, is a complete success (Lambda's rules).
    """
    text = response.strip()
    if not text or text == b"null":
        return []
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    if data is None:
        return []
    if not isinstance(data, dict):
        return None
    items = data.get("batchItemFailures")
    if items is None:
        return []
    if not isinstance(items, list):
        return None
    known = set(batch_ids)
    named: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            return None
        ident = item.get("itemIdentifier")
        if not isinstance(ident, str) or not ident or ident not in known:
            return None
        named.add(ident)
    return [i for i in batch_ids if i in named]
