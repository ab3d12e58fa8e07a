"""Settings of the channel adapters (issue 11), read from the environment beside `shared.settings.Settings`.

| variable | default | what |
|---|---|---|
| `META_APP_SECRET` | "" | the Meta app secret: `X-Hub-Signature-256` is its HMAC-SHA256 of the raw body |
| `META_VERIFY_TOKEN` | "" | the token Meta echoes in the `hub.challenge` handshake |
| `INSTAGRAM_GRAPH_URL` | `https://graph.instagram.com` | base URL of the Graph API (replies, Direct) |
| `TELEGRAM_API_URL` | `https://api.telegram.org` | base URL of the Bot API |
| `VK_API_URL` | `https://api.vk.com/method` | base URL of the VK API |
| `VK_API_VERSION` | `5.199` | the `v` parameter of VK calls |
| `ZABOTA_PUBLIC_URL` | `http://127.0.0.1:8000` | the gateway's public address, for the `webhook_url` of a channel |
| `ENGAGEMENT_SEND_MAX_ATTEMPTS` | `8` | a reply that still fails after this many attempts is `failed` |
| `ENGAGEMENT_IMAP_POLL_SECONDS` | `60` | how often every e-mail channel's mailbox is polled (IDLE wakes it sooner) |
| `ENGAGEMENT_MAIL_CA_FILE` | unset | PEM file of authorities trusted for mail servers besides the system's |
| `ENGAGEMENT_FILE_HOSTS` | VK's and Meta's CDNs | comma-separated hosts (and their subdomains) an attachment URL may point to |
| `ENGAGEMENT_FILE_MAX_TRIES` | `8` | an inbound file still not downloaded after this many tries is `failed` |
| `ENGAGEMENT_FILE_SECONDS` | `120` | the most one file's download may take (then it is tried again later) |
| `ENGAGEMENT_FILE_KEEP_DAYS` | `365` | a customer's file is kept this many days after it was stored, then its bytes are removed (`0`: kept for ever) |

An empty Meta secret refuses every Instagram delivery (nothing is accepted unsigned). A mail CA file that cannot
be read stops the service at start, rather than every mail connection failing later.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

# The platforms' own file hosts (VK's and Meta's CDNs): the only places an attachment's URL may point to.
FILE_HOSTS = ("vk.com", "vk.me", "userapi.com", "vkuser.net", "cdninstagram.com", "fbcdn.net", "fbsbx.com")


@dataclass(frozen=True)
class ChannelSettings:
    meta_app_secret: str = ""
    meta_verify_token: str = ""
    instagram_graph_url: str = "https://graph.instagram.com"
    telegram_api_url: str = "https://api.telegram.org"
    vk_api_url: str = "https://api.vk.com/method"
    vk_api_version: str = "5.199"
    public_url: str = "http://127.0.0.1:8000"
    send_max_attempts: int = 8
    http_timeout_seconds: float = 15.0
    imap_poll_seconds: float = 60.0
    mail_ca_file: str | None = None
    file_hosts: tuple[str, ...] = FILE_HOSTS
    file_max_tries: int = 8
    file_seconds: float = 120.0
    file_keep_days: int = 365

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ChannelSettings:
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            meta_app_secret=env.get("META_APP_SECRET", d.meta_app_secret),
            meta_verify_token=env.get("META_VERIFY_TOKEN", d.meta_verify_token),
            instagram_graph_url=env.get("INSTAGRAM_GRAPH_URL", d.instagram_graph_url).rstrip("/"),
            telegram_api_url=env.get("TELEGRAM_API_URL", d.telegram_api_url).rstrip("/"),
            vk_api_url=env.get("VK_API_URL", d.vk_api_url).rstrip("/"),
            vk_api_version=env.get("VK_API_VERSION", d.vk_api_version),
            public_url=env.get("ZABOTA_PUBLIC_URL", d.public_url).rstrip("/"),
            send_max_attempts=int(env.get("ENGAGEMENT_SEND_MAX_ATTEMPTS", d.send_max_attempts)),
            imap_poll_seconds=float(env.get("ENGAGEMENT_IMAP_POLL_SECONDS", d.imap_poll_seconds)),
            mail_ca_file=_mail_ca_file(env.get("ENGAGEMENT_MAIL_CA_FILE", "")),
            file_hosts=tuple(h.strip().lower() for h in env["ENGAGEMENT_FILE_HOSTS"].split(",") if h.strip())
            if env.get("ENGAGEMENT_FILE_HOSTS") else d.file_hosts,
            file_max_tries=int(env.get("ENGAGEMENT_FILE_MAX_TRIES", d.file_max_tries)),
            file_seconds=float(env.get("ENGAGEMENT_FILE_SECONDS", d.file_seconds)),
            file_keep_days=_keep_days(env.get("ENGAGEMENT_FILE_KEEP_DAYS", str(d.file_keep_days))),
        )


def _keep_days(value: str) -> int:
    days = int(value)
    if days < 0:
        raise ValueError(f"ENGAGEMENT_FILE_KEEP_DAYS={value}: a number of days, 0 for ever")
    return days


def _mail_ca_file(path: str) -> str | None:
    """The extra mail authorities' file, checked now: loaded as `ssl` will load it for every connection."""
    if not path.strip():
        return None
    try:
        ssl.create_default_context().load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ENGAGEMENT_MAIL_CA_FILE={path}: not a readable PEM file of certificates ({exc})") from exc
    return path
