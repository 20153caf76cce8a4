"""Finding the labeling functions that vote on a scheme.

Two places hold LFs: the Python modules a scheme names in curation.yaml (`lf_modules`, e.g.
`labeling_functions.claim_type`) and the workspace's own `W/lfs/*.py` files, which analysts and
the studio's LF editor write without touching the package. A workspace file declares the scheme
it votes on with a module-level `SCHEME = "claim_type"` (or a list of names); with a single
scheme in curation.yaml it may leave it out.

An LF is either a snorkel `@labeling_function()` or a plain function whose name starts with
`lf_` (taking the record, returning a vote); `lfs_from_module` finds both and gives both as
`LabelingFunction`s, so every applier (and the studio's LF editor, which calls it too) sees one
kind. What an LF may return is `apply.vote_index`'s business.

A module that fails to import (syntax error, missing import, an exception or `sys.exit()` at
import time) is reported with its file and line and skipped: the others still load.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from snorkel.labeling import LabelingFunction

from pipelines.config import SchemeConfig, load_config
from pipelines.errors import LabelingError
from pipelines.store import Workspace

__all__ = ["LFSet", "load_lfs", "lfs_from_module", "load_lf_file", "schemes_of",
           "WS_MODULE_PREFIX"]

WS_MODULE_PREFIX = "curation_workspace_lfs"


@dataclass
class LFSet:
    """The LFs of one scheme, in a stable order, with where each came from.

    Iterating yields the `LabelingFunction`s, so an `LFSet` can go wherever a list of LFs goes.
    """

    scheme: SchemeConfig
    lfs: list[LabelingFunction] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)     # LF name -> module or file
    hashes: dict[str, str] = field(default_factory=dict)      # LF name -> sha256 of its source
    errors: list[str] = field(default_factory=list)           # modules that did not load

    def __iter__(self):
        return iter(self.lfs)

    def __len__(self) -> int:
        return len(self.lfs)

    @property
    def names(self) -> list[str]:
        return [lf.name for lf in self.lfs]

    def add(self, lf: LabelingFunction, origin: str, source_hash: str) -> None:
        if lf.name in self.origins:
            raise LabelingError(
                f"two labeling functions named {lf.name!r} for scheme {self.scheme.name!r}: "
                f"in {self.origins[lf.name]} and in {origin}; rename one")
        self.lfs.append(lf)
        self.origins[lf.name] = origin
        self.hashes[lf.name] = source_hash


def lfs_from_module(module: ModuleType) -> list[LabelingFunction]:
    """The LFs defined in `module` (not those it imports from elsewhere), in definition order:
    its `@labeling_function()`s, and its plain functions named `lf_*` (wrapped as
    `LabelingFunction`s of the same name)."""
    out = []
    for name, value in vars(module).items():
        if isinstance(value, LabelingFunction):
            f = getattr(value, "_f", None)
            if getattr(f, "__module__", module.__name__) == module.__name__:
                out.append(value)
        elif (name.startswith("lf_") and inspect.isfunction(value)
              and value.__module__ == module.__name__):
            out.append(LabelingFunction(name, value))
    return out


def _source_hash(lf: LabelingFunction, fallback: bytes) -> str:
    try:
        src = inspect.getsource(lf._f).encode("utf-8")
    except (OSError, TypeError):
        src = fallback
    return hashlib.sha256(src).hexdigest()


def _describe_failure(exc: BaseException, path: str) -> str:
    """'file:line: what went wrong', pointing at the line in `path` where it went wrong."""
    if isinstance(exc, SyntaxError):
        return (f"{exc.filename or path}:{exc.lineno}: syntax error: {exc.msg}"
                + (f" ({exc.text.strip()})" if exc.text else ""))
    what = (f"calls sys.exit({exc.code!r}) at import; an LF file must only define functions"
            if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}")
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == Path(path).resolve():
            line = frame.lineno
    where = f"{path}:{line}" if line is not None else path
    return f"{where}: {what}"


def _check_classes(module: ModuleType, scheme: SchemeConfig, origin: str) -> None:
    declared = getattr(module, "CLASSES", None)
    if declared is not None and [str(c) for c in declared] != scheme.classes:
        raise LabelingError(
            f"{origin}: CLASSES {list(declared)} do not match scheme {scheme.name!r} classes "
            f"{scheme.classes} in curation.yaml (same names, same order: LFs vote by index)")


def _load_package_module(name: str) -> tuple[ModuleType | None, str | None]:
    try:
        return importlib.import_module(name), None
    except ModuleNotFoundError as exc:
        if exc.name == name or name.startswith(f"{exc.name}."):
            return None, f"{name}: module not found (lf_modules in curation.yaml)"
        return None, _describe_failure(exc, _module_file(name) or name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - an analyst's module may raise anything at
        return None, _describe_failure(exc, _module_file(name) or name)   # import, exit too


def _module_file(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None


def load_lf_file(path: Path) -> tuple[ModuleType | None, str | None]:
    """Import `W/lfs/<name>.py` under a name unique to its content, so an edit reloads it.

    Returns (module, None), or (None, 'file:line: what went wrong') when it does not import.
    """
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:12]
    mod_name = f"{WS_MODULE_PREFIX}.{path.stem.replace('-', '_')}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name], None
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        return None, f"{path}: cannot be imported as a Python module"
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        del sys.modules[mod_name]
        raise
    except BaseException as exc:  # noqa: BLE001 - sys.exit() at import included
        del sys.modules[mod_name]
        return None, _describe_failure(exc, str(path))
    # Dask workers cannot import a workspace file by name: ship its functions by value.
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module, None


def schemes_of(module: ModuleType) -> list[str] | None:
    """The schemes a module's `SCHEME` names; None when it declares none."""
    declared = getattr(module, "SCHEME", None)
    if declared is None:
        return None
    return [declared] if isinstance(declared, str) else [str(s) for s in declared]


def load_lfs(ws: Workspace, scheme: str | SchemeConfig | None = None, *,
             strict: bool = False) -> LFSet:
    """Every LF voting on `scheme`: its `lf_modules`, then `W/lfs/*.py` in file-name order.

    Args:
        scheme: a scheme name from curation.yaml (None: the first), or a `SchemeConfig`.
        strict: raise `LabelingError` on the first module that fails to load, instead of
            listing it in `LFSet.errors` and going on.

    Raises:
        LabelingError: two LFs share a name, a module's CLASSES disagree with the scheme, or
            no LF at all was found.
    """
    cfg = load_config(ws.config_path)
    sc = scheme if isinstance(scheme, SchemeConfig) else cfg.scheme(scheme)
    out = LFSet(scheme=sc)

    def failed(message: str) -> None:
        if strict:
            raise LabelingError(message)
        out.errors.append(message)

    for name in sc.lf_modules:
        module, err = _load_package_module(name)
        if err:
            failed(err)
            continue
        _check_classes(module, sc, name)
        fallback = Path(module.__file__).read_bytes() if getattr(module, "__file__", None) else b""
        for lf in lfs_from_module(module):
            out.add(lf, name, _source_hash(lf, fallback))

    lf_dir = ws.path / "lfs"
    for path in sorted(lf_dir.glob("*.py")) if lf_dir.is_dir() else []:
        if path.name.startswith("_"):
            continue
        module, err = load_lf_file(path)
        if err:
            failed(err)
            continue
        schemes = schemes_of(module)
        if schemes is None:
            if len(cfg.schemes) > 1:
                failed(f"{path}: declares no SCHEME; add e.g. SCHEME = {sc.name!r} "
                       f"(curation.yaml has schemes {', '.join(cfg.schemes)})")
                continue
            schemes = [sc.name]
        unknown = [s for s in schemes if s not in cfg.schemes]
        if unknown:
            failed(f"{path}: SCHEME {unknown[0]!r} is not in curation.yaml "
                   f"(schemes: {', '.join(cfg.schemes)})")
            continue
        if sc.name not in schemes:
            continue
        _check_classes(module, sc, str(path))
        data = path.read_bytes()
        for lf in lfs_from_module(module):
            out.add(lf, str(path), _source_hash(lf, data))

    if not out.lfs:
        detail = f"; modules that failed: {' | '.join(out.errors)}" if out.errors else ""
        raise LabelingError(
            f"no labeling functions for scheme {sc.name!r} (lf_modules: "
            f"{', '.join(sc.lf_modules) or 'none'}; workspace folder {lf_dir}){detail}")
    return out
