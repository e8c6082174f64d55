"""Validate a Llama Stack run config the way `llama stack run` does, without starting a server.

Runs under a pinned Llama Stack venv's Python (not under pytest): reads the run config on stdin, substitutes
``${env.X}`` from the environment exactly like the server, builds the stack config model, then validates each
provider's ``config`` against that provider's own config class. Prints a JSON summary on stdout; any problem
is an exception (non-zero exit) whose message names the offending field.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml
from pydantic import BaseModel

try:  # >= 0.4
    from llama_stack.core.datatypes import StackConfig as StackModel
    from llama_stack.core.stack import cast_distro_name_to_string as cast_name
except ImportError:  # 0.2.x / 0.3.x
    from llama_stack.core.datatypes import StackRunConfig as StackModel  # type: ignore[attr-defined,no-redef]
    from llama_stack.core.stack import cast_image_name_to_string as cast_name  # type: ignore[attr-defined,no-redef]
from llama_stack.core.distribution import get_provider_registry
from llama_stack.core.stack import replace_env_vars
from llama_stack.core.utils.dynamic import instantiate_class_type


def unknown_keys(model: type[BaseModel], data: dict[str, Any], where: str) -> list[str]:
    """Keys the model does not declare. Provider configs accept and silently drop extra keys, so a typo
    (``base_urll``) would otherwise pass validation and leave the real field at its default."""
    names = {alias for name, field in model.model_fields.items() for alias in (name, field.alias) if alias}
    problems = []
    for key, value in data.items():
        if key not in names:
            problems.append(f"{where}.{key}")
            continue
        annotation = model.model_fields[key].annotation if key in model.model_fields else None
        if isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            problems += unknown_keys(annotation, value, f"{where}.{key}")
    return problems


def main() -> None:
    raw = yaml.safe_load(sys.stdin.read())
    config = StackModel(**cast_name(replace_env_vars(raw)))
    registry = get_provider_registry(config)
    checked: list[dict[str, Any]] = []
    for api, providers in config.providers.items():
        by_api = {a.value if hasattr(a, "value") else str(a): specs for a, specs in registry.items()}
        specs = by_api.get(api)
        if specs is None:
            raise SystemExit(f"providers.{api}: unknown API")
        for provider in providers:
            spec = specs.get(provider.provider_type)
            if spec is None:
                raise SystemExit(
                    f"providers.{api}.{provider.provider_id}: unknown provider_type {provider.provider_type}"
                )
            config_class = instantiate_class_type(spec.config_class)
            config_class(**(provider.config or {}))
            extra = unknown_keys(
                config_class, provider.config or {}, f"providers.{api}.{provider.provider_id}"
            )
            if extra:
                raise SystemExit(f"unknown provider config keys: {', '.join(extra)}")
            checked.append(
                {"api": api, "provider_id": provider.provider_id, "provider_type": provider.provider_type}
            )
    apis = [a.value if hasattr(a, "value") else str(a) for a in config.apis]
    print(json.dumps({"apis": apis, "providers": checked}))


if __name__ == "__main__":
    main()
