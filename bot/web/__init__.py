"""The web worker: Telegram's webhook, health checks, the staff web and the Open311 read API."""

from bot.web.webhook import (
    SECRET_HEADER,
    WEBHOOK_PREFIX,
    build_web_app,
    limits_of,
    readiness,
    serve,
    webhook_path,
    webhook_path_secret,
    webhook_url,
)

__all__ = [
    "SECRET_HEADER",
    "WEBHOOK_PREFIX",
    "build_web_app",
    "limits_of",
    "readiness",
    "serve",
    "webhook_path",
    "webhook_path_secret",
    "webhook_url",
]
