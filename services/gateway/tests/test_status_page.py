"""Issue 7 §3: the System status page shows, for every service, its readiness, the loops that cannot run,
its consumers' lag and its outbox's oldest unsent event, translated."""

from __future__ import annotations

from litestar.testing import AsyncTestClient
from shared.testing import eventually

from .conftest import down_service_urls, gateway_settings, sign_in


async def test_issue7_s3_status_page_shows_consumer_lag_outbox_and_a_service_that_is_not_ready(
        database_url: str, service_process, nats_server) -> None:
    from gateway.app import create_app

    payroll_url = service_process("payroll", nats_url=nats_server.url)
    settings = gateway_settings(database_url, service_urls={**down_service_urls(), "payroll": payroll_url})
    async with AsyncTestClient(create_app(settings, background=False), base_url="http://127.0.0.1") as client:
        await sign_in(client, "lead")
        page = (await client.get("/status?lang=en")).text
        assert "available</span> <strong>Payroll</strong> <code>payroll</code>" in page
        assert "Consumer lag" in page and "payroll-clients" in page
        assert "Outbox: every event sent." in page and "Background loops" in page and "works" in page
        page = (await client.get("/status?lang=ru")).text
        assert "Отставание потребителей" in page and "Исходящие: все события отправлены." in page

        nats_server.stop()  # payroll answers, but cannot do its work: not ready, and the page says why

        async def not_ready() -> str | None:
            text = (await client.get("/status?lang=en")).text
            return text if "not ready</span> <strong>Payroll</strong> <code>payroll</code>" in text else None

        page = await eventually(not_ready, message="payroll not ready on the status page")
        assert "NATS does not answer." in page
        nats_server.start()
