"""OpenAPI annotations for plain APIViews (drf-spectacular cannot guess them).

Each view may name `inputs = {"post": SomeInput}`; responses are documented in
docs/forums.md and typed as JSON objects here. Operation ids are `<view>_<method>`.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView


def annotate(namespace: dict, prefix: str) -> None:
    for name, view in list(namespace.items()):
        if not (isinstance(view, type) and issubclass(view, APIView) and view is not APIView and name.endswith("View")):
            continue
        inputs = getattr(view, "inputs", {})
        for method in ("get", "post", "patch", "put", "delete"):
            if method in view.__dict__:
                decorator = extend_schema(
                    operation_id=f"{prefix}_{name[:-4].lower()}_{method}",
                    request=inputs.get(method),
                    responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT, 204: None},
                )
                setattr(view, method, decorator(view.__dict__[method]))
