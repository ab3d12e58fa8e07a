from shared.service import serve

serve("gateway", "gateway.app:create_asgi")
