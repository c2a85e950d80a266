"""Builds Lamina from its parts, owns start-up and shutdown, and serves it with uvicorn.

Shutdown order (after uvicorn stops accepting and drains requests): background invocations,
environments (every process tree killed), the log buffer, pending registry writes, the database.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from lamina.api.aliases import AliasesAPI
from lamina.api.app import LaminaApp
from lamina.api.buckets import BucketsAPI
from lamina.api.concurrency import ConcurrencyAPI
from lamina.api.event_invoke_config import EventInvokeConfigAPI
from lamina.api.event_source_mappings import EventSourceMappingsAPI
from lamina.api.events import TARGET as EVENTS_TARGET
from lamina.api.events import EventsAPI
from lamina.api.function_urls import FunctionUrlsAPI
from lamina.api.functions import FunctionsAPI
from lamina.api.http import Router
from lamina.api.invoke import InvokeAPI
from lamina.api.invoke_stream import InvokeStreamAPI
from lamina.api.layers import LayersAPI
from lamina.api.logs import TARGET as LOGS_TARGET
from lamina.api.logs import LogsAPI
from lamina.api.policies import PoliciesAPI
from lamina.api.provisioned_concurrency import ProvisionedConcurrencyAPI
from lamina.api.s3 import S3Gateway
from lamina.api.sqs import TARGET as SQS_TARGET
from lamina.api.sqs import SqsAPI
from lamina.api.status import StatusAPI
from lamina.api.tags import TagsAPI
from lamina.api.url_gateway import UrlGateway
from lamina.api.versions import VersionsAPI
from lamina.config import Settings
from lamina.control import hot_reload
from lamina.control.code_store import CodeStore
from lamina.control.function_urls import FunctionUrls
from lamina.control.layers import Layers
from lamina.control.layers_store import SqlLayerStore
from lamina.control.policies import Policies, SqlPolicyStore
from lamina.control.registry import Registry
from lamina.control.store import SqlFunctionStore
from lamina.db import Database, sqlite_url
from lamina.invoke.admission import Admission
from lamina.invoke.async_queue import SqlAsyncQueue, now_ms
from lamina.invoke.async_worker import AsyncWorker
from lamina.invoke.destinations import Destinations
from lamina.invoke.dispatcher import Dispatcher
from lamina.invoke.event_config import EventInvokeConfigs
from lamina.invoke.provisioned import ProvisionedConcurrency
from lamina.observe.logs import LogStore
from lamina.queues import Queues
from lamina.runtime.pool import Pool
from lamina.runtime.runtimes import catalog
from lamina.sandbox import choose as choose_sandbox
from lamina.sources.base import SourceContext, SourceKinds
from lamina.sources.mappings import Mappings
from lamina.sources.postgres_changes import POSTGRES_CHANGES
from lamina.sources.rabbitmq import parse_brokers, rabbitmq_kind
from lamina.sources.redis_streams import REDIS_STREAMS
from lamina.sources.secrets import FileSecrets
from lamina.sources.sqs import sqs_kind
from lamina.sources.store import SqlCheckpoints
from lamina.triggers.buckets import Buckets
from lamina.triggers.object_events import ObjectEvents
from lamina.triggers.object_store import ObjectStore
from lamina.triggers.rules import Rules
from lamina.triggers.scheduler import Scheduler

log = logging.getLogger("lamina")


@dataclass
class Lamina:
    settings: Settings
    endpoint: str
    db: Database
    registry: Registry
    pool: Pool
    logs: LogStore
    dispatcher: Dispatcher
    app: LaminaApp
    queues: Queues | None = None
    event_configs: EventInvokeConfigs | None = None
    async_worker: AsyncWorker | None = None
    rules: Rules | None = None
    scheduler: Scheduler | None = None
    buckets: Buckets | None = None
    object_events: ObjectEvents | None = None
    function_urls: FunctionUrls | None = None
    mappings: Mappings | None = None
    provisioned: ProvisionedConcurrency | None = None

    async def startup(self) -> None:
        await self.registry.load()
        self.pool.start()
        self.logs.start()
        if self.event_configs is not None:
            await self.event_configs.load()
        if self.function_urls is not None:
            await self.function_urls.load()
        if self.provisioned is not None:
            await self.provisioned.start()
        if self.queues is not None:
            await self.queues.start()
        if self.async_worker is not None:
            await self.async_worker.start()
        if self.rules is not None and self.scheduler is not None:
            await self.rules.load()
            await self.scheduler.start()  # runs that fell due while Lamina was down fire now
        if self.buckets is not None and self.object_events is not None:
            await self.buckets.load()
            await self.object_events.start()  # files changed while Lamina was down count now
        if self.mappings is not None:
            await self.mappings.start()
        _host, _port = self.endpoint.removeprefix("http://").rsplit(":", 1)
        print(f"Lamina is listening on {self.endpoint}", flush=True)
        print(f"  data dir: {self.settings.data_dir}", flush=True)
        print(f"  sandbox:  {self.pool.sandbox.name}", flush=True)
        for guarantee, state in self.pool.sandbox.guarantees().items():
            print(f"    {guarantee}: {state}", flush=True)
        snapshot = (
            "on (cold starts fork each version's template)" if self.pool.snapshot_starts else "off"
        )
        print(f"  snapshot starts: {snapshot}; status: {self.endpoint}/lamina/status", flush=True)
        print(
            f"  try:      aws --endpoint-url {self.endpoint} lambda list-functions   "
            f"(or: LAMINA_ENDPOINT={self.endpoint} lamina functions list)",
            flush=True,
        )

    async def shutdown(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.object_events is not None:
            await self.object_events.stop()
        if self.mappings is not None:
            await self.mappings.close()  # unsettled records come back by their source's rules
        if self.async_worker is not None:
            await self.async_worker.stop()  # what it ran is given back and runs after a restart
        if self.queues is not None:
            await self.queues.close()
        await self.dispatcher.close()
        if self.provisioned is not None:
            await self.provisioned.close()
        await self.pool.close()
        self.pool.sandbox.close()
        await self.logs.close()
        await self.registry.drain()
        self.db.close()


def build(settings: Settings, endpoint: str) -> Lamina:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(sqlite_url(settings.db_path))
    code = CodeStore(settings.code_dir)
    registry = Registry(
        db=db,
        store=SqlFunctionStore(db),
        code=code,
        account_id=settings.account_id,
        account_concurrency=settings.account_concurrency,
        unreserved_floor=settings.unreserved_floor,
        runtimes=catalog(),
    )
    layers = Layers(
        db=db,
        store=SqlLayerStore(db),
        code=code,
        account_id=settings.account_id,
        runtimes=registry.runtimes,
    )
    registry.layers = layers
    policies = Policies(db=db, store=SqlPolicyStore(db))
    registry.policies = layers.policies = policies
    registry.hot_reload = hot_reload.allowed(settings.hot_reload, settings.host)
    logs = LogStore(db)
    sandbox = choose_sandbox(
        settings.sandbox, settings.data_dir / "sandbox", hidden=[settings.data_dir]
    )
    pool = Pool(
        sandbox,
        idle_timeout_s=settings.idle_timeout_s,
        init_timeout_s=settings.init_timeout_s,
        freeze_delay_s=settings.freeze_delay_s,
        snapshot_starts=settings.snapshot_starts,
        template_idle_timeout_s=settings.template_idle_timeout_s,
        spare_environments=settings.spare_environments,
        min_available_mb=settings.min_available_mb,
    )
    registry.listeners.append(pool.retire)
    dispatcher = Dispatcher(
        registry=registry,
        code=code,
        pool=pool,
        admission=Admission(),
        logs=logs,
        api_endpoint=endpoint,
    )
    queues = Queues(db)
    event_configs = EventInvokeConfigs(db, registry)
    registry.listeners.append(event_configs.forget_deleted)
    registry.alias_listeners.append(event_configs.forget_deleted)
    async_worker = AsyncWorker(
        queue=SqlAsyncQueue(db),
        dispatcher=dispatcher,
        configs=event_configs,
        destinations=Destinations(registry),
        queues=queues,
        concurrency=settings.async_concurrency,
        retry_base_s=settings.async_retry_base_s,
    )
    async_queue = async_worker.queue
    rules = Rules(
        db,
        account_id=settings.account_id,
        clock_ms=now_ms,
        time_scale=settings.schedule_time_scale,
    )
    scheduler = Scheduler(
        rules, async_queue, registry.resolve, account_id=settings.account_id, clock_ms=now_ms
    )
    buckets = Buckets(
        db, registry.resolve, hidden=[settings.data_dir], managed_root=settings.data_dir / "buckets"
    )
    object_events = ObjectEvents(
        buckets,
        async_queue,
        registry.resolve,
        settle_s=settings.object_settle_s,
        clock_ms=now_ms,
    )
    object_store = ObjectStore(
        buckets, db, uploads_dir=settings.data_dir / "s3-uploads", events=object_events
    )
    function_urls = FunctionUrls(db, registry)
    registry.listeners.append(function_urls.forget_deleted)
    kinds = SourceKinds()
    kinds.register(sqs_kind())
    kinds.register(rabbitmq_kind(parse_brokers(settings.mq_brokers)))
    kinds.register(REDIS_STREAMS)
    kinds.register(POSTGRES_CHANGES)
    mappings = Mappings(
        db=db,
        kinds=kinds,
        ctx=SourceContext(
            account_id=settings.account_id,
            data_dir=settings.data_dir,
            checkpoints=SqlCheckpoints(db),
            secrets=FileSecrets(settings.data_dir / "secrets"),
            queues=queues,
        ),
        registry=registry,
        dispatcher=dispatcher,
        queues=queues,
        async_worker=async_worker,
    )
    router = Router()
    BucketsAPI(buckets).mount(router)
    FunctionsAPI(registry, code, object_store.read).mount(router)
    VersionsAPI(registry).mount(router)
    TagsAPI(registry).mount(router)
    AliasesAPI(registry).mount(router)
    InvokeAPI(dispatcher, async_worker).mount(router)
    InvokeStreamAPI(dispatcher).mount(router)
    EventInvokeConfigAPI(event_configs).mount(router)
    provisioned = ProvisionedConcurrency(db, registry, pool, dispatcher.spec)
    registry.listeners.append(provisioned.forget_deleted)
    ProvisionedConcurrencyAPI(provisioned).mount(router)
    ConcurrencyAPI(registry).mount(router)
    LayersAPI(layers, object_store.read).mount(router)
    PoliciesAPI(registry, layers, policies).mount(router)
    FunctionUrlsAPI(function_urls, int(endpoint.rsplit(":", 1)[1])).mount(router)
    EventSourceMappingsAPI(mappings).mount(router)
    StatusAPI(pool).mount(router)
    app = LaminaApp(router, default_region=settings.region)
    app.url_gateway = UrlGateway(function_urls, dispatcher)
    app.s3_gateway = S3Gateway(object_store, buckets, default_region=settings.region)
    app.targets[LOGS_TARGET] = LogsAPI(logs, settings.account_id)
    app.targets[SQS_TARGET] = SqsAPI(queues, settings.account_id)
    app.targets[EVENTS_TARGET] = EventsAPI(rules)
    lamina = Lamina(settings, endpoint, db, registry, pool, logs, dispatcher, app)
    lamina.queues, lamina.event_configs, lamina.async_worker = queues, event_configs, async_worker
    lamina.rules, lamina.scheduler = rules, scheduler
    lamina.buckets, lamina.object_events = buckets, object_events
    lamina.provisioned = provisioned
    app.startup.append(layers.load)
    app.startup.append(policies.load)
    lamina.function_urls = function_urls
    lamina.mappings = mappings
    app.startup.append(lamina.startup)
    app.shutdown.append(lamina.shutdown)
    return lamina


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        sys.exit(f"lamina: cannot listen on {settings.host}:{settings.port}: {exc.strerror}")
    port = sock.getsockname()[1]
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    lamina = build(settings, f"http://{shown_host}:{port}")
    config = uvicorn.Config(
        lamina.app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
        server_header=False,
        proxy_headers=False,  # Lamina is the edge; X-Forwarded-* would only cost time
        date_header=False,
    )
    _Server(config).run(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising SIGINT/SIGTERM once shutdown is done.

    uvicorn raises the captured signal again after a graceful shutdown so that the default
    disposition applies; inside asyncio's runner that surfaces as a KeyboardInterrupt and a
    traceback from the lifespan task. Lamina's shutdown is complete by then: exit normally.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
