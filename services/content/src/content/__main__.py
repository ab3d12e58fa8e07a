from shared.service import serve

serve("content", "content.app:create_app")
