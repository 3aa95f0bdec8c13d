"""Every named route of the project, read from the URL resolver, for tests that must cover them all."""

from django.urls import URLPattern, URLResolver, get_resolver


def named_routes() -> dict[str, str]:
    """`namespace:name` -> route pattern, for every named URL pattern."""
    def walk(patterns, prefix="", namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield f"{namespace}:{pattern.name}".strip(":"), prefix + str(pattern.pattern)
    return dict(walk(get_resolver().url_patterns))
