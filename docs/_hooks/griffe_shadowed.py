"""A griffe extension for the API reference: functions named like a sibling submodule.

``rum.profiler`` defines the function ``profile`` and also has a submodule
``profile.py`` (likewise ``rum.planner.plan``); ``rum.metrics`` re-exports the
function ``evaluate`` from its submodule ``evaluate.py``. Python gives the
function precedence, but griffe keeps only the submodule, so ``::: rum.profile``
would document the module. This extension puts the functions back once the
package has loaded: those defined in the package ``__init__``, and those the
package exports (``__all__``) from a submodule of the same name. It is used
only by ``mkdocs build``.
"""

from __future__ import annotations

from typing import Any

import griffe


class ShadowedFunctions(griffe.Extension):
    def __init__(self) -> None:
        self._functions: dict[str, list[griffe.Function]] = {}

    def on_function_instance(self, *, node: Any, func: griffe.Function, agent: Any, **kwargs: Any) -> None:
        parent = func.parent
        if isinstance(parent, griffe.Module) and parent.is_init_module:
            self._functions.setdefault(parent.path, []).append(func)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._restore(pkg)

    def _restore(self, module: griffe.Module) -> None:
        for func in self._functions.get(module.path, []):
            current = module.members.get(func.name)
            if current is not None and not current.is_alias and current.is_module:
                module.set_member(func.name, func)
        exports = set(module.exports or ())
        for name, member in list(module.members.items()):
            if member.is_alias or not member.is_module or name not in exports:
                continue
            inner = member.members.get(name)
            if inner is not None and not inner.is_alias and inner.is_function:
                module.set_member(name, griffe.Alias(name, inner, parent=module))
        for member in list(module.members.values()):
            if not member.is_alias and member.is_module:
                self._restore(member)
