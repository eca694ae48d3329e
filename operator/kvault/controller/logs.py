"""JSON log lines (one object per line) for the operator process."""

from __future__ import annotations

import json
import logging
import time

from kvault.errors import KvaultError


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for attr in ("object",):
            value = getattr(record, attr, None)
            if value:
                doc[attr] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The type, and the text only of our own errors (which never carry values);
            # a traceback could quote anything, so it is not logged.
            exc = record.exc_info[1]
            doc["error"] = record.exc_info[0].__name__
            if isinstance(exc, KvaultError):
                doc["detail"] = str(exc)[:300]
        return json.dumps(doc)


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kopf logs every handled watch event at INFO; with thousands of objects that is noise
    # (and CPU). Our own lines say what was done; kopf's warnings and errors stay.
    logging.getLogger("kopf.objects").setLevel(max(level, logging.WARNING))
