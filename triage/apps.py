from django.apps import AppConfig


class TriageConfig(AppConfig):
    name = "triage"
    label = "triage"
    verbose_name = "Triage"
    default_auto_field = "django.db.models.BigAutoField"
    # No ready() hook on purpose: model loading happens lazily in Celery workers
    # (triage.model), never at Django start-up, migrations or test collection.
