"""Show literal defaults in the API reference instead of private constant names.

A signature such as ``socket_timeout: float | None = DEFAULT_SOCKET_TIMEOUT``
reads well in the code, where the constant keeps one default for several
classes, but a reader of the reference cannot look the private constant up.
This griffe extension (loaded by mkdocstrings, see mkdocs.yml) replaces a
default or attribute value that names a ``DEFAULT_*`` constant by the
constant's own value, e.g. ``0.05``.
"""

from __future__ import annotations

from typing import Any

import griffe


class LiteralDefaults(griffe.Extension):
    """Replace `DEFAULT_*` names in defaults and values by the constants' values."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        for obj in _objects(pkg):
            if isinstance(obj, griffe.Function):
                for parameter in obj.parameters:
                    parameter.default = _literal(parameter.default, loader)
            elif isinstance(obj, griffe.Attribute):
                obj.value = _literal(obj.value, loader)


def _objects(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)  # type: ignore[arg-type]


def _literal(value: Any, loader: griffe.GriffeLoader) -> Any:
    if not (isinstance(value, griffe.ExprName) and value.name.startswith("DEFAULT_")):
        return value
    try:
        target = loader.modules_collection.get_member(value.canonical_path)
        if target.is_alias:
            target = target.final_target
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return value
    if isinstance(target, griffe.Attribute) and target.value is not None:
        return target.value
    return value
