"""`manage.py create_user --role ROLE --handle H --password P [--display-name N]`.

Non-interactive provisioning for operators; idempotent (an existing handle is updated).
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Role
from accounts.services import user_provision


class Command(BaseCommand):
    help = "Create or update a user with a role (for provisioning staff)."

    def add_arguments(self, parser):
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--handle", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--display-name", default="")

    def handle(self, *args, **opts):
        if len(opts["password"]) < 8:
            raise CommandError("password must be at least 8 characters")
        user, created = user_provision(
            role=opts["role"], handle=opts["handle"], password=opts["password"], display_name=opts["display_name"]
        )
        verb = "created" if created else "updated"
        self.stdout.write(f"{verb} {user.role} {user.handle} (id {user.id})")
