"""Moderation REST views: validate, call one service or selector, serialize."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.exceptions import ValidationFailed
from forums.access import access_post_for_reader
from forums.schema import annotate

from . import access, selectors, services
from .models import AuditEntry, ItemState, Queue, ReportReason, Sanction, WatchAction, WatchedWord
from .payloads import (
    appeal_payload,
    audit_payload,
    item_payload,
    sanction_payload,
    watched_word_payload,
)


class Page(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class ItemListView(APIView):
    def get(self, request: Request) -> Response:
        access.require_moderator(request.user)
        queue = request.query_params.get("queue") or None
        state = request.query_params.get("state") or None
        if queue is not None and queue not in Queue.values:
            raise ValidationFailed({"queue": ["One of care, sanction."]})
        if state is not None and state not in ItemState.values:
            raise ValidationFailed({"state": [f"One of {', '.join(ItemState.values)}."]})
        paginator = Page()
        page = paginator.paginate_queryset(selectors.item_list(queue=queue, state=state), request, view=self)
        return paginator.get_paginated_response([item_payload(i) for i in page])


class ItemDetailView(APIView):
    def get(self, request: Request, item_id: int) -> Response:
        return Response(item_payload(access.access_item_for_moderator(request.user, item_id)))


class ItemClaimView(APIView):
    def post(self, request: Request, item_id: int) -> Response:
        item = access.access_item_for_moderator(request.user, item_id)
        return Response(item_payload(services.item_claim(moderator=request.user, item=item)))


class ItemReleaseView(APIView):
    def post(self, request: Request, item_id: int) -> Response:
        item = access.access_item_for_moderator(request.user, item_id)
        return Response(item_payload(services.item_release(moderator=request.user, item=item)))


class DecideInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=services.DECISIONS)
    version = serializers.IntegerField(min_value=1)
    reason = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    message = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    body = serializers.CharField(max_length=8000, required=False)
    hours = serializers.IntegerField(min_value=1, max_value=24 * 365, required=False)


class ItemDecideView(APIView):
    inputs = {"post": DecideInput}

    def post(self, request: Request, item_id: int) -> Response:
        item = access.access_item_for_moderator(request.user, item_id)
        data = DecideInput(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.item_decide(moderator=request.user, item=item, **data.validated_data)
        item = access.access_item_for_moderator(request.user, item.id)
        return Response(item_payload(item))


class ReportInput(serializers.Serializer):
    post_id = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=ReportReason.values)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class ReportCreateView(APIView):
    inputs = {"post": ReportInput}

    def post(self, request: Request) -> Response:
        data = ReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        post = access_post_for_reader(request.user, data.validated_data["post_id"])
        report = services.report_file(reporter=request.user, post=post, reason=data.validated_data["reason"], note=data.validated_data["note"])
        # The reporter learns it was received, never what the queue holds.
        return Response({"id": report.id, "post_id": post.id, "reason": report.reason, "received": True}, status=status.HTTP_201_CREATED)


class SanctionListView(APIView):
    """Young people see their own sanctions; the moderation team sees all (or ?user_id=)."""

    def get(self, request: Request) -> Response:
        qs = Sanction.objects.select_related("appeal").order_by("-id")
        if request.user.role in access.MODERATING_ROLES:
            user_id = request.query_params.get("user_id")
            if user_id and user_id.isdigit():
                qs = qs.filter(user_id=int(user_id))
        else:
            qs = qs.filter(user=request.user)
        paginator = Page()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([sanction_payload(s) for s in page])


class AppealInput(serializers.Serializer):
    text = serializers.CharField(max_length=2000)


class SanctionAppealView(APIView):
    inputs = {"post": AppealInput}

    def post(self, request: Request, sanction_id: int) -> Response:
        sanction = access.access_sanction_for_user(request.user, sanction_id)
        data = AppealInput(data=request.data)
        data.is_valid(raise_exception=True)
        appeal = services.appeal_file(user=request.user, sanction=sanction, text=data.validated_data["text"])
        return Response(appeal_payload(appeal), status=status.HTTP_201_CREATED)


class AppealListView(APIView):
    def get(self, request: Request) -> Response:
        access.require_moderator(request.user)
        state = request.query_params.get("state", "pending")
        paginator = Page()
        page = paginator.paginate_queryset(selectors.appeal_list(state=None if state == "all" else state), request, view=self)
        return paginator.get_paginated_response([appeal_payload(a) for a in page])


class AppealDecideInput(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["upheld", "overturned"])
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class AppealDecideView(APIView):
    inputs = {"post": AppealDecideInput}

    def post(self, request: Request, appeal_id: int) -> Response:
        appeal = access.access_appeal_for_moderator(request.user, appeal_id)
        data = AppealDecideInput(data=request.data)
        data.is_valid(raise_exception=True)
        appeal = services.appeal_decide(moderator=request.user, appeal=appeal, **data.validated_data)
        return Response(appeal_payload(appeal))


class WatchedWordInput(serializers.Serializer):
    phrase = serializers.CharField(max_length=100)
    action = serializers.ChoiceField(choices=WatchAction.values)
    replacement = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class WatchedWordUpdateInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=WatchAction.values, required=False)
    replacement = serializers.CharField(max_length=100, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class WatchedWordListView(APIView):
    inputs = {"post": WatchedWordInput}

    def get(self, request: Request) -> Response:
        access.require_moderator(request.user)
        words = WatchedWord.objects.order_by("-is_active", "phrase")
        return Response({"results": [watched_word_payload(w) for w in words]})

    def post(self, request: Request) -> Response:
        access.require_moderator(request.user)
        data = WatchedWordInput(data=request.data)
        data.is_valid(raise_exception=True)
        word = services.watched_word_create(actor=request.user, **data.validated_data)
        return Response(watched_word_payload(word), status=status.HTTP_201_CREATED)


class WatchedWordDetailView(APIView):
    inputs = {"patch": WatchedWordUpdateInput}

    def patch(self, request: Request, word_id: int) -> Response:
        word = access.access_watched_word_for_moderator(request.user, word_id)
        data = WatchedWordUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(watched_word_payload(services.watched_word_update(actor=request.user, word=word, **data.validated_data)))

    def delete(self, request: Request, word_id: int) -> Response:
        word = access.access_watched_word_for_moderator(request.user, word_id)
        services.watched_word_update(actor=request.user, word=word, is_active=False)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MetricsView(APIView):
    def get(self, request: Request) -> Response:
        access.access_metrics_for_supervisor(request.user)
        return Response(selectors.queue_metrics())


class AuditListView(APIView):
    def get(self, request: Request) -> Response:
        access.require_moderator(request.user)
        qs = AuditEntry.objects.order_by("-id")
        for name in ("item_id", "post_id", "sanction_id", "appeal_id"):
            value = request.query_params.get(name)
            if value and value.isdigit():
                qs = qs.filter(**{name: int(value)})
        paginator = Page()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([audit_payload(e) for e in page])


annotate(globals(), "moderation")
