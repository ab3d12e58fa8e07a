from shared.service import serve

serve("clients", "clients.app:create_app")
