"""Deployment checks Django does not make itself (run by `manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_allowed_hosts_not_wildcard(app_configs, **kwargs):
    # A wildcard host defeats the websocket Origin allow-list (AllowedHostsOriginValidator).
    if "*" in settings.ALLOWED_HOSTS or any(h.strip() in {"*", ".*"} for h in settings.ALLOWED_HOSTS):
        return [Error("ALLOWED_HOSTS must list the service's host names, not '*'.", id="earlyhelp.E001")]
    return []


@register(Tags.security, deploy=True)
def check_channel_layer_encrypted(app_configs, **kwargs):
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if layer.get("BACKEND", "").startswith("channels_redis") and not layer.get("CONFIG", {}).get(
        "symmetric_encryption_keys"
    ):
        return [Error("Chat text must not sit in Redis in plain text: set symmetric_encryption_keys.", id="earlyhelp.E002")]
    return []


@register(Tags.security, deploy=True)
def check_browsable_api_off(app_configs, **kwargs):
    renderers = settings.REST_FRAMEWORK.get("DEFAULT_RENDERER_CLASSES", [])
    if not settings.DEBUG and any("BrowsableAPIRenderer" in r for r in renderers):
        return [Error("The browsable API must be off outside development.", id="earlyhelp.E003")]
    return []
