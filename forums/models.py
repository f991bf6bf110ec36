"""Peer-support boards. (Threads, posts and reactions arrive with the forums issue.)"""

from __future__ import annotations

from django.db import models


class ModerationPolicy(models.TextChoices):
    PRE = "pre", "Every post held for a moderator"
    AUTO = "auto", "Clean posts published, flagged posts held"
    POST = "post", "Published, reviewed after"


class Board(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    # Pre-moderation is the default, as Kooth and Childline do.
    policy = models.CharField(max_length=8, choices=ModerationPolicy.choices, default=ModerationPolicy.PRE)
    # Age restriction (inclusive); null means open to every age the service accepts.
    min_age = models.PositiveSmallIntegerField(null=True, blank=True)
    max_age = models.PositiveSmallIntegerField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name
