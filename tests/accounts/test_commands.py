"""Operator commands: create_user and seed_demo are non-interactive and idempotent."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Role, User
from forums.models import Board

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_user_creates_then_updates():
    out = run("create_user", "--role", "clinician", "--handle", "dr.kim", "--password", "secret-pass-1")
    assert out.startswith("created clinician dr.kim")
    out = run("create_user", "--role", "supervisor", "--handle", "dr.kim", "--password", "secret-pass-2")
    assert out.startswith("updated supervisor dr.kim")
    user = User.objects.get(handle="dr.kim")
    assert user.role == Role.SUPERVISOR and user.check_password("secret-pass-2")
    assert User.objects.filter(handle__iexact="dr.kim").count() == 1


def test_create_user_rejects_unknown_role_and_short_password():
    with pytest.raises(CommandError):
        run("create_user", "--role", "wizard", "--handle", "x.y", "--password", "secret-pass-1")
    with pytest.raises(CommandError):
        run("create_user", "--role", "counsellor", "--handle", "x.y", "--password", "short")


def test_seed_demo_is_idempotent_and_covers_every_role(settings):
    settings.DEBUG = True
    first = run("seed_demo")
    run("seed_demo")
    roles = set(User.objects.values_list("role", flat=True))
    assert roles == set(Role.values)
    assert Board.objects.count() >= 5
    assert User.objects.filter(handle="counsellor.sam").count() == 1
    assert "counsellor.sam" in first and "password" in first


def test_seed_demo_refuses_outside_development(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError):
        run("seed_demo")


def _check_deploy(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    base.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": "x" * 20 + "production-secret-key-with-enough-entropy-1234567890",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "ALLOWED_HOSTS": "help.example.org",
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=120,
    )


def test_production_settings_pass_check_deploy():
    result = _check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_wildcard_hosts():
    result = _check_deploy(ALLOWED_HOSTS="*")
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stdout + result.stderr
