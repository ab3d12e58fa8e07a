from shared.service import serve

serve("engagement", "engagement.app:create_app")
