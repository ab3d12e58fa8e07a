"""The `gateway` service: staff pages (Jinja + htmx), sign-in and roles, and the public API routing.

It owns only staff accounts and sessions; everything else it shows comes from the other services
over HTTP (ServiceClient). It emits and consumes no events, so it runs without NATS.
"""

from __future__ import annotations

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from shared.clock import Clock
from shared.service import ServiceSpec, create_service_app, quieter_garbage_collection
from shared.settings import Settings
from shared.telemetry import trace_url

from gateway import agency, i18n, rosters
from gateway.config import GatewayConfig
from gateway.guards import page_exception_handlers, page_guard
from gateway.models import Base
from gateway.pages import events_docs, page_routes
from gateway.pages.errors import not_found_handler
from gateway.people import PeopleMiddleware
from gateway.proxy import proxy_routes
from gateway.rendering import STATIC_DIR, create_template_engine
from gateway.security_headers import add_security_headers
from gateway.service_client import close_http_client, open_http_client, provide_services
from gateway.sessions import WebSessionMiddleware
from gateway.staff import seed_demo_staff
from gateway.webhook_front import WebhookFront


def spec(settings: Settings) -> ServiceSpec:
    i18n.load_all()
    i18n.set_agency_default("")   # until the clients service says otherwise (gateway/agency.py)
    pages = Router(path="/", route_handlers=[*page_routes, *events_docs.routes], guards=[page_guard],
                   middleware=[WebSessionMiddleware, PeopleMiddleware], include_in_schema=False)
    static = create_static_files_router(path="/static", directories=[STATIC_DIR], name="static",
                                        cache_control=None)
    engine = create_template_engine(settings)   # follows the lead's calendar (gateway/agency.py)
    engine.engine.globals["deal_trace_url"] = trace_url   # "this deal's trace" (ZABOTA_TRACE_URL, issue 14)
    return ServiceSpec(
        name="gateway",
        metadata=Base.metadata,
        uses_bus=False,
        public_routes=[pages, static, *proxy_routes],
        on_startup=[open_http_client, seed_demo_staff],
        loops=lambda runtime: {"agency settings": lambda: agency.follow(runtime),
                               "staff rosters": lambda: rosters.follow(runtime)},
        app_options={
            "template_config": TemplateConfig(instance=engine),
            "dependencies": {"services": Provide(provide_services, sync_to_thread=False)},
            "exception_handlers": {**page_exception_handlers, NotFoundException: not_found_handler},
            "before_send": [add_security_headers],
            "on_shutdown": [close_http_client],
        },
    )


def create_app(settings: Settings | None = None, clock: Clock | None = None, background: bool = True,
               config: GatewayConfig | None = None) -> Litestar:
    """`config`: the gateway's own settings (gateway.config), from the environment unless given."""
    settings = settings or Settings.from_env("gateway")
    app = create_service_app(spec(settings), settings=settings, clock=clock, background=background)
    app.state.gateway_config = config or GatewayConfig.from_env()
    return app


def create_asgi() -> WebhookFront:
    """What `python -m gateway` serves: the app behind the plain-ASGI relay of the channels' webhooks
    (gateway.webhook_front)."""
    quieter_garbage_collection()
    return WebhookFront(create_app())
