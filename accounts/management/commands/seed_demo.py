"""`manage.py seed_demo`: demo staff of every role, a demo young person and forum boards.

Idempotent: running it again resets the demo passwords and leaves everything else.
For local demos only; it refuses to run with DEBUG off unless --force is given.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role, User
from accounts.services import user_provision
from forums.models import Board

DEMO_PASSWORD = "demo-pass-2468"
DEMO_USERS = [
    (Role.COUNSELLOR, "counsellor.sam", "Sam"),
    (Role.COUNSELLOR, "counsellor.alex", "Alex"),
    (Role.MODERATOR, "moderator.jo", "Jo"),
    (Role.CLINICIAN, "clinician.priya", "Dr Priya"),
    (Role.CLINICIAN, "clinician.tom", "Tom"),
    (Role.SUPERVISOR, "supervisor.lee", "Lee"),
    (Role.ADMIN, "admin.demo", "Admin"),
]
DEMO_BOARDS = [
    ("anxiety", "Anxiety", "Worries, panic and stress.", None, None),
    ("school", "School", "Exams, teachers, homework and bullying.", None, None),
    ("friendships", "Friendships", "Friends, falling out and loneliness.", None, None),
    ("family", "Family", "Home life, parents, carers and siblings.", None, None),
    ("identity", "Identity", "Who you are: gender, sexuality, culture, faith.", None, None),
    ("young-teens", "Under 14s", "A space just for 10-13 year olds.", 10, 13),
    ("over-18s", "18-25", "Work, uni, moving out.", 18, 25),
]


class Command(BaseCommand):
    help = "Create demo staff of every role, a demo young person and forum boards; prints logins."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(self, *args, **opts):
        if not settings.DEBUG and not opts["force"]:
            raise CommandError("seed_demo creates known passwords; use --force outside development")
        rows = []
        for role, handle, name in DEMO_USERS:
            user, _ = user_provision(role=role, handle=handle, password=DEMO_PASSWORD, display_name=name)
            rows.append((user.role, user.handle))
        young, created = User.objects.get_or_create(
            handle="river_fox", defaults={"role": Role.YOUNG_PERSON, "birth_year": 2010, "birth_month": 5}
        )
        young.set_password(DEMO_PASSWORD)
        young.save()
        rows.append((young.role, young.handle))
        for position, (slug, name, description, min_age, max_age) in enumerate(DEMO_BOARDS):
            Board.objects.update_or_create(
                slug=slug,
                defaults={"name": name, "description": description, "min_age": min_age, "max_age": max_age, "position": position},
            )
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for role, handle in rows:
            self.stdout.write(f"  {role:<13} {handle}")
        self.stdout.write(f"Boards: {', '.join(b[1] for b in DEMO_BOARDS)}")
