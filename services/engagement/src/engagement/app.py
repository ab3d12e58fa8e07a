"""The `engagement` service: `create_app()` assembles its routes, the inbound processor and the reply sender
on the shared runtime (issue 11: the care inbox).

The processor, the sender and the file fetcher (inbound attachments) are background loops. Where the shared
runtime supervises a service's own loops (`ServiceSpec.loops`, issue 7 §3) they run under it; otherwise they
are started here. Either way they stop before the runtime closes the database, and the channels' HTTP clients
are closed last.
"""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import suppress
from datetime import date

from litestar import Litestar
from shared.clock import Clock
from shared.service import Runtime, ServiceSpec, create_service_app, quieter_garbage_collection
from shared.settings import Settings

from engagement import changes, processor_process, quality, rounds, rounds_handlers, sop_materialise
from engagement.ask_client import public_routes as ask_client_routes
from engagement.config import ChannelSettings
from engagement.controllers import api_routes
from engagement.file_fetcher import FileFetcher
from engagement.inbound import ChannelCache, DeliveryProcessor, webhook_routes
from engagement.ingest import WebhookFront
from engagement.mailbox import MailboxPoller
from engagement.models import Base
from engagement.monitoring import FeedPoller
from engagement.monitoring_api import monitoring_routes
from engagement.push_sender import PushSender
from engagement.quality_controllers import quality_routes
from engagement.sender import Sender
from engagement.sop_controllers import sop_routes
from engagement.sop_push_controllers import push_routes

SUPERVISED = "loops" in {f.name for f in dataclasses.fields(ServiceSpec)}


def spec(channels: ChannelSettings, background: bool = True, separate_processor: bool = False) -> ServiceSpec:
    separate_processor = separate_processor and SUPERVISED

    async def start_loops(rt: Runtime) -> None:
        # engagement.processor_process: on PostgreSQL under `python -m engagement` the processor is a child
        # process; here only what wakes it (a NOTIFY) stands in its place.
        processor = (processor_process.Notifier(rt.db, processor_process.DELIVERIES) if separate_processor
                     else DeliveryProcessor(rt.db, rt.clock))
        sender = Sender(rt.db, rt.clock, channels, rt.settings)
        poller = FeedPoller(rt.db, rt.clock)
        mailbox = MailboxPoller(rt.db, rt.clock, rt.settings, poll_seconds=channels.imap_poll_seconds,
                                on_stored=processor.wake, timeout=channels.http_timeout_seconds,
                                ca_file=channels.mail_ca_file)
        pushes = PushSender(rt.db, rt.clock, channels, rt.settings)  # issue 13: SOP auto-send and reminders
        fetcher = FileFetcher(rt.db, rt.clock, channels, rt.settings)  # the files inbound messages carry
        rt.state.update(processor=processor, sender=sender, poller=poller, mailbox=mailbox, push_sender=pushes,
                        fetcher=fetcher)
        tasks = [asyncio.create_task(processor.run()), asyncio.create_task(sender.run()),
                 asyncio.create_task(poller.run()), asyncio.create_task(mailbox.run()),
                 asyncio.create_task(pushes.run()), asyncio.create_task(fetcher.run())] \
            if background and not SUPERVISED else []
        stop_runtime = rt.stop

        async def stop() -> None:  # the loops stop before the runtime closes the database
            if SUPERVISED:
                rt.supervisor.stopping = True  # our loops end now: not a crash to restart
            if not separate_processor:
                processor.stop()
            sender.stop()
            poller.stop()
            mailbox.stop()
            pushes.stop()
            fetcher.stop()
            for task in tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 5)
            await stop_runtime()
            await sender.close()
            await poller.close()
            await pushes.close()
            await fetcher.close()

        rt.stop = stop  # type: ignore[method-assign]

    def timers(rt: Runtime) -> dict:
        quality.configure(rt.settings.calendar.tz.key)

        async def en3(session, timer) -> None:  # noqa: ANN001 - the TimerHandler signature
            await quality.on_timer(session, timer, rt.clock)

        async def en4_round(session, timer) -> None:  # noqa: ANN001
            await rounds.make_rounds(session, rt.settings.calendar, rt.clock,
                                     date.fromisoformat(timer.payload["day"]), timer.payload["slot"])

        async def en4_due(session, timer) -> None:  # noqa: ANN001
            await rounds.on_due(session, timer.payload["round"], rt.clock)

        async def sop_rule(session, timer) -> None:  # noqa: ANN001
            await sop_materialise.on_rule_timer(session, timer.payload, rt.settings.calendar.tz, rt.clock)

        async def sop_calendar(session, timer) -> None:  # noqa: ANN001
            await sop_materialise.on_calendar_timer(session, timer.payload, rt.settings.calendar.tz, rt.clock)

        async def sop_expire(session, timer) -> None:  # noqa: ANN001
            await sop_materialise.on_expire_timer(session, timer.payload, rt.clock)

        return {quality.TIMER_KIND: en3, rounds.ROUND_TIMER: en4_round, rounds.DUE_TIMER: en4_due,
                sop_materialise.RULE_TIMER: sop_rule, sop_materialise.CALENDAR_TIMER: sop_calendar,
                sop_materialise.EXPIRE_TIMER: sop_expire}

    async def schedule_rounds(rt: Runtime) -> None:
        async with rt.db.transaction() as session:
            await rounds.ensure_scheduled(session, rt.settings.calendar, rt.clock)

    def inbound_loops(rt: Runtime) -> dict:
        if not separate_processor:
            return {"engagement inbound": rt.state["processor"].run}
        def changed() -> None:   # the child committed inbox changes: the live pages, and any files to fetch
            rt.state["changes_wakeup"].fire()
            rt.state["fetcher"].wake()

        live = processor_process.Listener(rt.settings.database_url, processor_process.CHANGES, changed)
        return {"engagement inbound": lambda: processor_process.run_child(rt.settings),
                "engagement live updates": live.run}

    extra = {"loops": lambda rt: {**inbound_loops(rt),
                                  "engagement sender": rt.state["sender"].run,
                                  "engagement monitoring": rt.state["poller"].run,
                                  "engagement mailbox": rt.state["mailbox"].run,
                                  "engagement push sender": rt.state["push_sender"].run,
                                  "engagement files": rt.state["fetcher"].run}} if SUPERVISED else {}
    return ServiceSpec(name="engagement", metadata=Base.metadata,
                       api_routes=[*api_routes, *quality_routes, *monitoring_routes, *sop_routes, *push_routes],
                       public_routes=[*webhook_routes, *ask_client_routes],
                       on_startup=[start_loops, schedule_rounds, changes.install],
                       timers=timers, subscriptions=rounds_handlers.subscriptions, **extra)


def create_app(settings: Settings | None = None, clock: Clock | None = None, background: bool = True,
               channels: ChannelSettings | None = None, separate_processor: bool = False) -> Litestar:
    channels = channels or ChannelSettings.from_env()
    app = create_service_app(spec(channels, background, separate_processor), settings=settings, clock=clock,
                             background=background)
    app.state.channels = channels
    app.state.channel_cache = ChannelCache()
    return app


def create_asgi() -> WebhookFront:
    """What `python -m engagement` serves: the app behind the plain-ASGI webhook front (engagement.ingest).
    Called in each uvicorn worker process, so each logs as the service does."""
    from shared.telemetry import setup_logging

    setup_logging("engagement")
    quieter_garbage_collection()
    settings = Settings.from_env("engagement")
    return WebhookFront(create_app(settings, separate_processor=processor_process.wanted(settings)))

