"""Logging of every process the command starts: level, destination (terminal, file, syslog), text or JSON lines,
configured secrets redacted, and the chatter of libraries kept out of the default level."""

from __future__ import annotations

import json
import logging
import warnings
from datetime import UTC, datetime
from pathlib import Path

from aigc_admin.settings import Settings

# Periodic jobs run every minute: rq and rq-scheduler would log several lines each time ("Result will never
# expire", "Successfully completed"...). They speak at WARNING unless the log level is debug.
QUIET = ("rq.worker", "rq.queue", "rq.job", "rq_scheduler", "rq_scheduler.scheduler",
         "mcp.server.streamable_http", "mcp.server.streamable_http_manager")  # an INFO line per MCP request


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RedactSecrets(logging.Filter):
    """Belt and braces: a configured secret that slips into a log message is replaced."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            msg = record.getMessage()
            if any(s in msg for s in self._secrets):
                for s in self._secrets:
                    msg = msg.replace(s, "***")
                record.msg, record.args = msg, None
        return True


def setup_logging(settings: Settings) -> None:
    wanted = settings.server_log_level
    level = getattr(logging, {"all": "DEBUG", "warn": "WARNING"}.get(wanted.lower(), wanted.upper()), logging.INFO)
    handler: logging.Handler
    if settings.server_log_drive == "file":
        directory = Path(settings.server_log_path or settings.storage_dir / "logs")
        directory.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(directory / settings.server_log_name)
    elif settings.server_log_drive == "syslog":
        from logging.handlers import SysLogHandler

        handler = SysLogHandler(address="/dev/log") if Path("/dev/log").exists() else logging.StreamHandler()
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if settings.server_log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactSecrets(settings.secret_values()))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # one INFO line per proxied request is noise (and CPU) on the gateway's hot path
    logging.getLogger("httpx").setLevel(max(logging.WARNING, level))
    for name in QUIET:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)
    # rq-scheduler 0.14 calls crontab in a way a future crontab will change: warned at every start, nothing to do
    warnings.filterwarnings("ignore", message=r"Version 0\.22\.0\+ of crontab", category=FutureWarning)
