"""The spec registry: every module in this package defines one `SPEC` (a LayerSpec).
Modules are discovered, so adding a layer's spec is adding one file."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from parity.spec import LayerSpec


@lru_cache(maxsize=1)
def _registry() -> dict[str, LayerSpec]:
    specs: dict[str, LayerSpec] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, LayerSpec):
            raise TypeError(f"parity/specs/{module_info.name}.py must define SPEC = <LayerSpec>")
        if spec.name in specs:
            raise ValueError(f"two specs are named {spec.name!r}")
        specs[spec.name] = spec
    return specs


def all_specs() -> list[LayerSpec]:
    return list(_registry().values())


def spec_names() -> list[str]:
    return list(_registry())


def get_spec(name: str) -> LayerSpec:
    registry = _registry()
    if name not in registry:
        raise KeyError(f"no layer spec named {name!r}; known: {', '.join(registry)}")
    return registry[name]
