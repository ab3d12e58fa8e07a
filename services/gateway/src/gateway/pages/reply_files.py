"""An agent's reply with files, on the conversation page (issue 11, beyond text): the composer's file input where
the channel takes files, and the chosen files as the engagement service takes them."""

from __future__ import annotations

import base64
from typing import Any

from litestar.datastructures import UploadFile

# Where an agent's reply may carry files (the engagement service says the same: services.check_reply_files).
FILE_CHANNELS = ("telegram", "vk", "email", "webform")
REPLY_BODY_LIMIT = 30 * 1024 * 1024   # 20 MB of files and the form around them


def can_attach(conversation: dict[str, Any]) -> bool:
    return conversation.get("kind") in FILE_CHANNELS and conversation.get("thread_kind") != "vk_wall"


async def reply_uploads(request: Any) -> list[dict[str, str]]:
    """The files chosen in the composer, as the engagement service takes them (base64 in JSON); an empty file
    input (no file chosen) gives none."""
    form = await request.form()
    uploads = []
    for value in form.getall("files", []):
        if isinstance(value, UploadFile) and value.filename:
            data = await value.read()
            uploads.append({"name": value.filename, "content_type": value.content_type or "",
                            "data": base64.b64encode(data).decode("ascii")})
    return uploads
