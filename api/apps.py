from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"

    def ready(self) -> None:
        from . import checks, schema  # noqa: F401  register deploy checks and the OpenAPI auth extension
