"""Forum REST views: validate, call one service or selector, serialize."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import access, selectors, services
from .models import Post
from .payloads import board_payload, post_payload, thread_payload
from .schema import annotate


class Page(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


def _posts_out(posts: list[Post], user) -> list[dict]:
    summary = selectors.reaction_summary(posts=posts, user=user)
    return [post_payload(p, viewer=user, reactions=summary[p.id]) for p in posts]


class BoardListView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"results": [board_payload(b) for b in access.boards_for_user(request.user)]})


class ThreadCreateInput(serializers.Serializer):
    title = serializers.CharField(max_length=140, trim_whitespace=True)
    body = serializers.CharField(max_length=8000, trim_whitespace=True)


class BoardThreadsView(APIView):
    inputs = {"post": ThreadCreateInput}

    def get(self, request: Request, board_id: int) -> Response:
        board = access.access_board_for_user(request.user, board_id)
        threads = access.threads_visible_to(request.user, board).select_related("author").order_by("-last_activity_at", "-id")
        paginator = Page()
        page = paginator.paginate_queryset(threads, request, view=self)
        firsts = {p.thread_id: p for p in Post.objects.select_related("author").filter(thread__in=page, is_first=True)}
        return paginator.get_paginated_response(
            [thread_payload(t, first_post=firsts.get(t.id), viewer=request.user) for t in page]
        )

    def post(self, request: Request, board_id: int) -> Response:
        board = access.access_board_for_user(request.user, board_id)
        data = ThreadCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        thread = services.thread_create(user=request.user, board=board, **data.validated_data)
        thread.refresh_from_db()
        return Response(thread_payload(thread, first_post=thread.first_post, viewer=request.user), status=status.HTTP_201_CREATED)


class ThreadDetailView(APIView):
    def get(self, request: Request, thread_id: int) -> Response:
        thread = access.access_thread_for_user(request.user, thread_id)
        first = Post.objects.select_related("author").filter(thread=thread, is_first=True).first()
        return Response(thread_payload(thread, first_post=first, viewer=request.user))


class PostCreateInput(serializers.Serializer):
    body = serializers.CharField(max_length=8000, trim_whitespace=True)


class ThreadPostsView(APIView):
    inputs = {"post": PostCreateInput}

    def get(self, request: Request, thread_id: int) -> Response:
        thread = access.access_thread_for_user(request.user, thread_id)
        paginator = Page()
        page = paginator.paginate_queryset(selectors.post_list_for_thread(user=request.user, thread=thread), request, view=self)
        return paginator.get_paginated_response(_posts_out(list(page), request.user))

    def post(self, request: Request, thread_id: int) -> Response:
        thread = access.access_thread_for_user(request.user, thread_id)
        data = PostCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        post = services.post_create(user=request.user, thread=thread, body=data.validated_data["body"])
        return Response(post_payload(post, viewer=request.user), status=status.HTTP_201_CREATED)


class PostDetailView(APIView):
    inputs = {"patch": PostCreateInput}

    def get(self, request: Request, post_id: int) -> Response:
        post = access.access_post_for_reader(request.user, post_id)
        return Response(_posts_out([post], request.user)[0])

    def patch(self, request: Request, post_id: int) -> Response:
        post = access.access_post_for_author(request.user, post_id)
        data = PostCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        post = services.post_edit(user=request.user, post=post, body=data.validated_data["body"])
        return Response(post_payload(post, viewer=request.user))

    def delete(self, request: Request, post_id: int) -> Response:
        post = access.access_post_for_author(request.user, post_id)
        services.post_delete(user=request.user, post=post)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReactionInput(serializers.Serializer):
    kind = serializers.CharField(max_length=16)


class ReactionsView(APIView):
    inputs = {"post": ReactionInput}

    def post(self, request: Request, post_id: int) -> Response:
        post = access.access_post_for_reader(request.user, post_id)
        data = ReactionInput(data=request.data)
        data.is_valid(raise_exception=True)
        created = services.reaction_add(user=request.user, post=post, kind=data.validated_data["kind"])
        return Response(_posts_out([post], request.user)[0], status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ReactionDeleteView(APIView):
    def delete(self, request: Request, post_id: int, kind: str) -> Response:
        post = access.access_post_for_reader(request.user, post_id)
        services.reaction_remove(user=request.user, post=post, kind=kind)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationListView(APIView):
    def get(self, request: Request) -> Response:
        from .events import notification_frame

        unread = request.query_params.get("unread") in ("1", "true")
        paginator = Page()
        page = paginator.paginate_queryset(selectors.notification_list(user=request.user, unread_only=unread), request, view=self)
        return paginator.get_paginated_response([{**notification_frame(n), "read": n.read_at is not None} for n in page])


class NotificationReadInput(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=500)


class NotificationReadView(APIView):
    inputs = {"post": NotificationReadInput}

    def post(self, request: Request) -> Response:
        data = NotificationReadInput(data=request.data)
        data.is_valid(raise_exception=True)
        count = services.notifications_mark_read(user=request.user, ids=data.validated_data.get("ids"))
        return Response({"marked": count})


annotate(globals(), "forums")
