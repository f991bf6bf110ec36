"""Auth and identity endpoints. Each view: validate, call one service, serialize."""

from __future__ import annotations

from django.contrib.auth import login as session_login
from django.contrib.auth import logout as session_logout
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AuthToken
from accounts.services import auth_login, auth_logout, user_register

from .throttling import ScopedRateThrottle


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    handle = serializers.CharField()
    role = serializers.CharField()
    display_name = serializers.CharField()
    age_band = serializers.CharField(allow_null=True)
    date_joined = serializers.DateTimeField()


def client_address(request: Request) -> str:
    # Behind the proxy Daphne runs with --proxy-headers, so REMOTE_ADDR is the client.
    return request.META.get("REMOTE_ADDR", "")


class RegisterInput(serializers.Serializer):
    handle = serializers.CharField(max_length=64)
    password = serializers.CharField(max_length=128, write_only=True)
    birth_year = serializers.IntegerField(min_value=1900, max_value=2100)
    birth_month = serializers.IntegerField(min_value=1, max_value=12)


class LoginInput(serializers.Serializer):
    handle = serializers.CharField(max_length=64)
    password = serializers.CharField(max_length=128, write_only=True)
    session = serializers.BooleanField(default=False, help_text="Also start a cookie session (web client).")


class RegisterView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=RegisterInput, responses={201: UserOutput}, summary="Register a young person")
    def post(self, request: Request) -> Response:
        data = RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_register(**data.validated_data)
        return Response(UserOutput(user).data, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=LoginInput,
        responses={200: inline_serializer("LoginOutput", {"token": serializers.CharField(), "user": UserOutput()})},
        summary="Log in; returns a token for REST and websocket",
    )
    def post(self, request: Request) -> Response:
        data = LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        user, key = auth_login(
            handle=data.validated_data["handle"], password=data.validated_data["password"], address=client_address(request)
        )
        if data.validated_data["session"]:
            session_login(request._request, user, backend="django.contrib.auth.backends.ModelBackend")
        return Response({"token": key, "user": UserOutput(user).data})


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None}, summary="Revoke this token and close the user's sockets")
    def post(self, request: Request) -> Response:
        token = request.auth if isinstance(request.auth, AuthToken) else None
        auth_logout(user=request.user, token=token)
        session_logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: UserOutput}, summary="The logged-in user")
    def get(self, request: Request) -> Response:
        return Response(UserOutput(request.user).data)
