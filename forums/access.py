"""Permission-checked fetches: the only way transport obtains forum objects.

One condition per line, so coverage shows every branch. "Not visible" is answered as
`not_found`, so nobody can probe for held posts or restricted boards by id.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import Role, User
from config.exceptions import NotFound, PermissionDenied

from .exceptions import BoardAgeRestricted
from .models import Board, Post, PostState, Thread

# Who can see held and rejected posts and run the queue.
MODERATING_ROLES = frozenset({Role.MODERATOR, Role.SUPERVISOR, Role.ADMIN})


def is_moderating(user: User) -> bool:
    return user.role in MODERATING_ROLES


def board_allows(board: Board, user: User) -> bool:
    """Age bands bind young people; staff see every board."""
    if not user.is_young_person:
        return True
    if board.min_age is None and board.max_age is None:
        return True
    age = user.age
    if age is None:
        return False
    if board.min_age is not None and age < board.min_age:
        return False
    if board.max_age is not None and age > board.max_age:
        return False
    return True


def boards_for_user(user: User) -> list[Board]:
    return [b for b in Board.objects.all() if board_allows(b, user)]


def access_board_for_user(user: User, board_id: int) -> Board:
    board = Board.objects.filter(pk=board_id).first()
    if board is None:
        raise NotFound("No such board.")
    if not board_allows(board, user):
        raise BoardAgeRestricted()
    return board


def visible_posts_q(user: User) -> Q:
    """Posts a user may see: published ones, their own (held/rejected), all for moderators."""
    if is_moderating(user):
        return Q()
    return Q(state=PostState.PUBLISHED) | Q(author=user)


def threads_visible_to(user: User, board: Board) -> QuerySet[Thread]:
    threads = Thread.objects.filter(board=board)
    if is_moderating(user):
        return threads
    public = Q(posts__is_first=True, posts__state=PostState.PUBLISHED, posts__deleted_at=None)
    return threads.filter(public | Q(author=user)).distinct()


def access_thread_for_user(user: User, thread_id: int) -> Thread:
    thread = Thread.objects.select_related("board").filter(pk=thread_id).first()
    if thread is None:
        raise NotFound("No such thread.")
    if not board_allows(thread.board, user):
        raise NotFound("No such thread.")
    first = thread.posts.filter(is_first=True).first()
    if first is None:
        raise NotFound("No such thread.")
    if is_moderating(user):
        return thread
    if thread.author_id == user.id:
        return thread
    if first.state != PostState.PUBLISHED:
        raise NotFound("No such thread.")
    if first.deleted_at is not None:
        raise NotFound("No such thread.")
    return thread


def access_post_for_reader(user: User, post_id: int) -> Post:
    """A post the user can see (reactions, reports, reading)."""
    post = Post.objects.select_related("thread__board").filter(pk=post_id).first()
    if post is None:
        raise NotFound("No such post.")
    if not board_allows(post.thread.board, user):
        raise NotFound("No such post.")
    if is_moderating(user):
        return post
    if post.author_id == user.id:
        return post
    if post.state != PostState.PUBLISHED:
        raise NotFound("No such post.")
    return post


def access_post_for_author(user: User, post_id: int) -> Post:
    post = access_post_for_reader(user, post_id)
    if post.author_id != user.id:
        raise PermissionDenied("Only the author can change this post.")
    return post
