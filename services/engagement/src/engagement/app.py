"""The `engagement` service: `create_app()` assembles its routes, the inbound processor and the reply sender
on the shared runtime (issue 11: the care inbox).

The processor and the sender are background loops. Where the shared runtime supervises a service's own loops
(`ServiceSpec.loops`, issue 7 §3) they run under it; otherwise they are started here. Either way they stop
before the runtime closes the database, and the channels' HTTP client is closed last.
"""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import suppress

from litestar import Litestar
from shared.clock import Clock
from shared.service import Runtime, ServiceSpec, create_service_app
from shared.settings import Settings

from engagement import changes
from engagement.ask_client import public_routes as ask_client_routes
from engagement.config import ChannelSettings
from engagement.controllers import api_routes
from engagement.inbound import ChannelCache, DeliveryProcessor, webhook_routes
from engagement.models import Base
from engagement.sender import Sender

SUPERVISED = "loops" in {f.name for f in dataclasses.fields(ServiceSpec)}


def spec(channels: ChannelSettings, background: bool = True) -> ServiceSpec:
    async def start_loops(rt: Runtime) -> None:
        processor = DeliveryProcessor(rt.db, rt.clock)
        sender = Sender(rt.db, rt.clock, channels, rt.settings)
        rt.state.update(processor=processor, sender=sender)
        tasks = [asyncio.create_task(processor.run()), asyncio.create_task(sender.run())] \
            if background and not SUPERVISED else []
        stop_runtime = rt.stop

        async def stop() -> None:  # the loops stop before the runtime closes the database
            if SUPERVISED:
                rt.supervisor.stopping = True  # our loops end now: not a crash to restart
            processor.stop()
            sender.stop()
            for task in tasks:
                with suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 5)
            await stop_runtime()
            await sender.close()

        rt.stop = stop  # type: ignore[method-assign]

    extra = {"loops": lambda rt: {"engagement inbound": rt.state["processor"].run,
                                  "engagement sender": rt.state["sender"].run}} if SUPERVISED else {}
    return ServiceSpec(name="engagement", metadata=Base.metadata, api_routes=api_routes,
                       public_routes=[*webhook_routes, *ask_client_routes],
                       on_startup=[start_loops, changes.install], **extra)


def create_app(settings: Settings | None = None, clock: Clock | None = None, background: bool = True,
               channels: ChannelSettings | None = None) -> Litestar:
    channels = channels or ChannelSettings.from_env()
    app = create_service_app(spec(channels, background), settings=settings, clock=clock, background=background)
    app.state.channels = channels
    app.state.channel_cache = ChannelCache()
    return app
