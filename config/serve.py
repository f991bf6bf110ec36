"""Daphne, with uvloop as its event loop: `python -m config.serve [daphne's arguments]`.

Daphne runs Twisted on an asyncio loop that it creates when `daphne.server` is imported,
so the loop implementation must be chosen before that import; a setting read by the
application would come too late. Everything else is Daphne's own command line, unchanged.

Why (issue 7, docs/benchmarks.md): nearly half of the ASGI process's CPU under chat load
is the event loop (Twisted's websocket frames, channels_redis's publishes and subscription
reads, the hand-offs to and from the handler threads). uvloop runs the loop's scheduling
and the Redis connections' transports in C: 1-9% (on average 4.5%) less CPU per message
than asyncio's loop, measured with both serving the same load on the same core.

ASGI_EVENT_LOOP=asyncio keeps the standard library's loop (and so does a machine
without uvloop installed, with a warning): the two are interchangeable for the
application, which never depends on the loop's type.

It also stops autobahn (Daphne's websocket protocol) from colouring the arguments of debug
log lines that are never written (skip_unwritten_debug_colouring).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

EVENT_LOOPS = ("uvloop", "asyncio")  # what ASGI_EVENT_LOOP may name; the first is the default


def install_event_loop(choice: str | None = None) -> str:
    """Install the event loop policy named by `choice` (or ASGI_EVENT_LOOP, default
    uvloop) and return the one in effect: "uvloop" or "asyncio"."""
    choice = (choice or os.environ.get("ASGI_EVENT_LOOP") or EVENT_LOOPS[0]).strip().lower()
    if choice not in EVENT_LOOPS:
        raise SystemExit(f"ASGI_EVENT_LOOP must be uvloop or asyncio, not {choice!r}")
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        logger.warning("uvloop is not installed; serving on asyncio's own event loop")
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def _as_is(value: Any, *_args: Any, **_kwargs: Any) -> Any:
    return value


def skip_unwritten_debug_colouring() -> bool:
    """Make autobahn's hltype/hlval return their argument as it is, unless its debug log is
    on; returns whether it did.

    autobahn logs every frame it sends and every read at debug level, and builds that line's
    arguments first: hltype (the method's qualified name, through inspect) and hlval, each
    coloured with click.style, two or three calls a frame. With debug off the logger drops
    the line, so all of it is wasted: 3-4% of the Daphne process's CPU under chat load, in
    sendData and dataReceived (py-spy, docs/benchmarks.md, twenty-seventh pass). Only the
    names in the two modules that log per frame are rebound; should debug logging be turned
    on later, those lines show the plain values instead of coloured ones."""
    import txaio
    from autobahn.twisted import websocket as twisted_websocket  # selects txaio's Twisted API
    from autobahn.websocket import protocol

    if txaio.get_global_log_level() in ("debug", "trace"):
        return False
    for module in (protocol, twisted_websocket):
        module.hltype = module.hlval = _as_is
    return True


def main() -> None:
    install_event_loop()
    from daphne.cli import CommandLineInterface  # after the policy: it creates the loop on import

    skip_unwritten_debug_colouring()

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
