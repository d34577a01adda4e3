"""What every workbench reads the same way, without I/O: a person's town from their scope, a service's error
details as messages by field."""
from __future__ import annotations


def town_of_scope(scope: str) -> str | None:
    """The town of a town scope text (`town:<code>`: a clerk's, a town supervisor's or town agent's), else None."""
    return scope.split(":", 1)[1] if scope.startswith("town:") else None


def detail_messages(details) -> list[tuple[str, str]]:
    """A service's 4xx `details` (marshmallow's nested messages) as (the innermost field name, its message in one
    line), in order: what the forms put next to their fields."""
    out: list[tuple[str, str]] = []

    def text(value) -> str:
        if isinstance(value, list | tuple):
            return "；".join(text(v) for v in value)
        if isinstance(value, dict):
            return "；".join(f"{k}: {text(v)}" for k, v in value.items())
        return str(value)

    def walk(node, path: str):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, str(key))
        elif node is not None:
            out.append((path, text(node)))

    walk(details, "")
    return out
