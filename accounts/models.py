"""Users are pseudonymous: a handle, a role, and for young people a month/year of birth."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Role(models.TextChoices):
    YOUNG_PERSON = "young_person", "Young person"
    COUNSELLOR = "counsellor", "Counsellor"
    MODERATOR = "moderator", "Moderator"
    CLINICIAN = "clinician", "Duty clinician"
    SUPERVISOR = "supervisor", "Supervisor"
    ADMIN = "admin", "Administrator"


STAFF_ROLES = frozenset({Role.COUNSELLOR, Role.MODERATOR, Role.CLINICIAN, Role.SUPERVISOR, Role.ADMIN})


class UserManager(BaseUserManager["User"]):
    def get_by_natural_key(self, handle: str) -> User:
        return self.get(handle__iexact=handle)

    def create_user(self, handle: str, password: str | None = None, **extra) -> User:
        user = self.model(handle=handle, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, handle: str, password: str | None = None, **extra) -> User:
        extra.setdefault("role", Role.ADMIN)
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(handle, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    handle = models.CharField(max_length=32, unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.YOUNG_PERSON)
    # Staff only: the name a young person sees ("Sam, counsellor"). Young people have none.
    display_name = models.CharField(max_length=64, blank=True)
    # Young people only: month/year, never a full date of birth (data minimisation).
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    birth_month = models.PositiveSmallIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Can log in to the Django admin.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "handle"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("handle"), name="user_handle_ci_unique")]

    def __str__(self) -> str:
        return self.handle

    @property
    def is_young_person(self) -> bool:
        return self.role == Role.YOUNG_PERSON

    @property
    def is_staff_member(self) -> bool:
        return self.role in STAFF_ROLES

    def age_on(self, day: dt.date) -> int | None:
        if self.birth_year is None or self.birth_month is None:
            return None
        # Without a day of birth, count the birthday as reached on the 1st of the month.
        return day.year - self.birth_year - (1 if day.month < self.birth_month else 0)

    @property
    def age(self) -> int | None:
        return self.age_on(timezone.localdate())

    @property
    def age_band(self) -> str | None:
        age = self.age
        if age is None:
            return None
        if age <= 13:
            return "10-13"
        if age <= 17:
            return "14-17"
        return "18-25"

    @property
    def public_name(self) -> str:
        return self.display_name or self.handle


class AuthToken(models.Model):
    """An API/websocket token. Only a hash is stored, so a database leak leaks no tokens."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="auth_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8, help_text="First characters, to tell tokens apart in admin.")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Tier(models.TextChoices):
    PRIMARY = "primary", "Primary"
    BACKUP = "backup", "Backup"
    MANAGER = "manager", "Manager"


class Shift(models.Model):
    """A clinician's duty shift. Escalations go to whoever is on duty at the time."""

    clinician = models.ForeignKey(User, on_delete=models.CASCADE, related_name="shifts")
    start = models.DateTimeField()
    end = models.DateTimeField()
    tier = models.CharField(max_length=8, choices=Tier.choices, default=Tier.PRIMARY)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["start", "tier"]
        indexes = [models.Index(fields=["start", "end"])]
        constraints = [models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="shift_end_after_start")]
