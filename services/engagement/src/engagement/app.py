"""The `engagement` service: `create_app()` assembles its routes, the inbound processor and the reply sender
on the shared runtime (issue 11: the care inbox)."""

from __future__ import annotations

import asyncio
from contextlib import suppress

from litestar import Litestar
from shared.clock import Clock
from shared.service import Runtime, ServiceSpec, create_service_app
from shared.settings import Settings

from engagement.ask_client import public_routes as ask_client_routes
from engagement.config import ChannelSettings
from engagement.controllers import api_routes
from engagement.inbound import ChannelCache, DeliveryProcessor, webhook_routes
from engagement.models import Base
from engagement.sender import Sender


def spec(channels: ChannelSettings, background: bool = True) -> ServiceSpec:
    async def start_loops(rt: Runtime) -> None:
        processor = DeliveryProcessor(rt.db, rt.clock)
        sender = Sender(rt.db, rt.clock, channels, rt.settings.secret_key)
        tasks = [asyncio.create_task(processor.run()), asyncio.create_task(sender.run())] if background else []
        rt.state.update(processor=processor, sender=sender)
        stop_runtime = rt.stop

        async def stop() -> None:  # the loops stop before the runtime closes the database
            await _stop_loops(processor, sender, tasks)
            await stop_runtime()

        rt.stop = stop  # type: ignore[method-assign]

    return ServiceSpec(name="engagement", metadata=Base.metadata, api_routes=api_routes,
                       public_routes=[*webhook_routes, *ask_client_routes], on_startup=[start_loops])


async def _stop_loops(processor: DeliveryProcessor, sender: Sender, tasks: list[asyncio.Task]) -> None:
    processor.stop()
    sender.stop()
    for task in tasks:
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
    await sender.close()


def create_app(settings: Settings | None = None, clock: Clock | None = None, background: bool = True,
               channels: ChannelSettings | None = None) -> Litestar:
    channels = channels or ChannelSettings.from_env()
    app = create_service_app(spec(channels, background), settings=settings, clock=clock, background=background)
    app.state.channels = channels
    app.state.channel_cache = ChannelCache()
    return app
