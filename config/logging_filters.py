"""Logging filters named in settings.LOGGING."""

from __future__ import annotations

import asyncio
import logging


class CancelledUnsubscribe(logging.Filter):
    """channels_redis' pub/sub layer unsubscribes a socket's channel when the socket's
    receive is cancelled, and logs ERROR with a traceback if that unsubscribe raises. When
    the server shuts down with sockets open, each socket's task is cancelled again while its
    unsubscribe waits for the shard's lock: the second CancelledError was logged as an error
    on every deploy (tens to hundreds of tracebacks, docs/benchmarks.md). Nothing is lost: the
    process is exiting and its subscriptions close with its connection. This filter turns
    exactly that record — the layer's clean-up cut short by a cancellation — into one INFO line
    without the traceback; any other failure of the clean-up stays an ERROR."""

    MESSAGE = "a socket's channel clean-up was cancelled (the server is stopping); its subscription closes with the connection"
    # channels_redis.pubsub's own text for that record (RedisPubSubLoopLayer.receive): another
    # record of the logger that carries a CancelledError is not this case and is left alone.
    CLEAN_UP = "Unexpected exception while cleaning-up channel"

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if (isinstance(exc, asyncio.CancelledError) and record.levelno >= logging.ERROR
                and str(record.msg).startswith(self.CLEAN_UP)):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg, record.args = self.MESSAGE, ()
            record.exc_info = record.exc_text = None
        return True
