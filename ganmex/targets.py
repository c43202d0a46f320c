"""Import a `_target_` given in a config, refusing with one line instead of Hydra's multi-line traceback.

A user's class (`dataset.source._target_`, ...) lives outside ganmex: a typo or a package missing from
PYTHONPATH is the common error, and the line must name the key, the path and the fix.
"""

from __future__ import annotations

import importlib
from typing import Any

from ganmex.errors import ConfigError

# what OmegaConf leaves in a mandatory value nobody set
MISSING = "???"


def locate_target(path: object, key: str) -> Any:
    """The object at dotted `path` (`pkg.module.Class`, or `pkg.module.Class.Nested`), importing the
    longest importable module prefix; a ConfigError naming `key` when there is none."""
    example = f"e.g. {key}=my_package.MyDataset"
    if path is None or path == MISSING:
        raise ConfigError(f"{key} is not set; name the class to import, {example}")
    if not isinstance(path, str) or "." not in path:
        raise ConfigError(f"{key}={path!r} must be the dotted path of an importable class, {example}")
    parts = path.split(".")
    missing: ModuleNotFoundError | None = None
    for split in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:split])
        try:
            found: Any = importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name and (module == error.name or module.startswith(f"{error.name}.")):
                missing = missing or error  # the path itself: try a shorter module (Class.Nested)
                continue
            raise _inside(key, path, module, error) from None
        except ImportError as error:
            raise _inside(key, path, module, error) from None
        try:
            for name in parts[split:]:
                found = getattr(found, name)
        except AttributeError:
            if missing is not None:  # pkg.missing_module.Class: the module is what is missing
                break
            raise ConfigError(
                f"{key}={path} cannot be imported: module {module} has no {'.'.join(parts[split:])}; "
                f"check the spelling"
            ) from None
        return found
    raise ConfigError(
        f"{key}={path} cannot be imported ({missing}); install its package or add its folder to PYTHONPATH"
    ) from None


def _inside(key: str, path: str, module: str, error: ImportError) -> ConfigError:
    """The module exists but its own imports fail: name what it needs, not the path."""
    return ConfigError(
        f"{key}={path} cannot be imported: importing {module} failed ({error}); install what it needs"
    )
