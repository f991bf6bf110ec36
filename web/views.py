"""Pages of the reference web client. Each page is a template plus one ES module; all
data comes from the public REST API and the /ws/ socket, as any other client would."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import TemplateView

from accounts.models import Role, User

QUICK_EXIT_URL_DEFAULT = "https://www.bbc.co.uk/weather"
HOME_FOR_ROLE = {
    Role.YOUNG_PERSON: "/chat/",
    Role.COUNSELLOR: "/counsellor/",
    Role.SUPERVISOR: "/counsellor/",
    Role.MODERATOR: "/moderator/",
    Role.CLINICIAN: "/clinician/",
    Role.ADMIN: "/moderator/",
}


@method_decorator(ensure_csrf_cookie, name="dispatch")
class Page(TemplateView):
    """A client page. `roles` None: anyone; otherwise signed-in users of those roles."""

    roles: tuple[str, ...] | None = None
    module = ""

    def dispatch(self, request, *args, **kwargs):
        if self.roles is not None:
            user = request.user
            if not user.is_authenticated:
                return redirect(f"/?next={request.path}")
            if user.role not in self.roles:
                return redirect(HOME_FOR_ROLE.get(user.role, "/"))
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        user = self.request.user
        ctx.update(
            module=self.module,
            crisis_resources=getattr(settings, "CRISIS_RESOURCES", []),
            quick_exit_url=getattr(settings, "WEB_QUICK_EXIT_URL", QUICK_EXIT_URL_DEFAULT),
            young=(not user.is_authenticated) or user.role == Role.YOUNG_PERSON,
            home_for_role=HOME_FOR_ROLE.get(getattr(user, "role", None), "/"),
        )
        return ctx


class HomePage(Page):
    template_name = "web/index.html"
    module = "home.js"


class ChatPage(Page):
    template_name = "web/chat.html"
    module = "chat.js"
    roles = (Role.YOUNG_PERSON,)


class ForumsPage(Page):
    template_name = "web/forums.html"
    module = "forums.js"
    roles = tuple(Role.values)


class CounsellorPage(Page):
    template_name = "web/counsellor.html"
    module = "counsellor.js"
    roles = (Role.COUNSELLOR, Role.SUPERVISOR)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        # Transfer targets: the other counselling staff.
        ctx["colleagues"] = list(
            User.objects.filter(role__in=[Role.COUNSELLOR, Role.SUPERVISOR], is_active=True)
            .exclude(pk=self.request.user.pk)
            .order_by("display_name", "handle")
            .values("id", "handle", "display_name")
        )
        return ctx


class ModeratorPage(Page):
    template_name = "web/moderator.html"
    module = "moderator.js"
    roles = (Role.MODERATOR, Role.SUPERVISOR, Role.ADMIN)


class ClinicianPage(Page):
    template_name = "web/clinician.html"
    module = "clinician.js"
    roles = (Role.CLINICIAN, Role.SUPERVISOR)
