"""Forum websocket frames: subscribe to live updates of a thread or a board."""

from __future__ import annotations

from typing import Any

from api.wsproto import FrameInvalid, WsResult, field_int, ws_handler

from .access import access_board_for_user, access_thread_for_user
from .events import board_group, thread_group


def _target(user, frame: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    thread_id = field_int(frame, "thread_id", required=False)
    board_id = field_int(frame, "board_id", required=False)
    if thread_id is not None:
        thread = access_thread_for_user(user, thread_id)
        return thread_group(thread.id), {"thread_id": thread.id}
    if board_id is not None:
        board = access_board_for_user(user, board_id)
        return board_group(board.id), {"board_id": board.id}
    raise FrameInvalid("`thread_id` or `board_id` is required.")


@ws_handler("forum.subscribe")
def forum_subscribe(user, frame: dict[str, Any]) -> WsResult:
    group, target = _target(user, frame)
    return WsResult(join=[group], replies=[{"type": "forum.subscribed", **target, "ref": frame.get("ref")}])


@ws_handler("forum.unsubscribe")
def forum_unsubscribe(user, frame: dict[str, Any]) -> WsResult:
    group, target = _target(user, frame)
    return WsResult(leave=[group], replies=[{"type": "forum.unsubscribed", **target, "ref": frame.get("ref")}])
