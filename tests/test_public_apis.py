"""The package stays on its libraries' public APIs: no private name (`_x`, or a name-mangled
`_Class__x`) of flask-jwt-extended, limits or waitress is imported, read or called, except in the
one module named below with its reason; and only auth/ imports flask-jwt-extended."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "eventory_backend"
WATCHED = ("flask_jwt_extended", "limits", "waitress")

# Each module allowed under a watched library's public API, and why.
EXCEPTIONS = {
    "web/waitress_send_timeout.py": (
        "robustness, not speed: a client that stops reading cannot hold a waitress thread forever; "
        "tests/test_server.py fails if waitress stops calling the overridden method"
    ),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _library_private_names() -> set[str]:
    """Every private name the watched libraries define: module globals, class attributes and
    their name-mangled forms."""
    names: set[str] = set()
    for package_name in WATCHED:
        package = importlib.import_module(package_name)
        modules = [package]
        for info in pkgutil.walk_packages(package.__path__, package_name + "."):
            if info.name.endswith("__main__"):
                continue  # a command line, not a module to import
            try:
                modules.append(importlib.import_module(info.name))
            except ImportError:  # an optional back end whose driver is not installed
                continue
        for module in modules:
            for name, value in vars(module).items():
                if _private(name):
                    names.add(name)
                if isinstance(value, type) and value.__module__.startswith(package_name):
                    names.update(attribute for attribute in vars(value) if _private(attribute))
    return names


def _own_private_names(trees: dict[str, ast.Module]) -> set[str]:
    """Private names the package defines itself (its own functions, classes and attributes)."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {name for name in names if _private(name)}


def _watched(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in WATCHED


def _imported_from_watched(tree: ast.Module) -> set[str]:
    """The names `tree` binds to a watched library's modules, classes and functions."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _watched(node.module):
            bound.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names if _watched(a.name))
    return bound


def violations(tree: ast.Module, library_private: set[str], own: set[str]) -> list[str]:
    """Where `tree` touches a watched library's private name, overrides one in a subclass, or
    replaces an attribute of the library's modules or classes."""
    found = []
    imported = _imported_from_watched(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id in imported for b in node.bases):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in library_private:
                    found.append(f"line {item.lineno}: overrides {node.name}.{item.name}")
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, (ast.Store, ast.Del))
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
        ):
            found.append(f"line {node.lineno}: replaces {node.value.id}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and _watched(node.module):
            assert node.module is not None
            private_parts = [part for part in node.module.split(".") if _private(part)]
            private_names = [alias.name for alias in node.names if _private(alias.name)]
            found += [f"line {node.lineno}: from {node.module} import {n}" for n in private_parts + private_names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _watched(alias.name) and any(_private(part) for part in alias.name.split(".")):
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in library_private and node.attr not in own:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in library_private and node.value not in own:
                found.append(f"line {node.lineno}: {node.value!r}")
    return found


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.Module]:
    return {
        path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


@pytest.fixture(scope="module")
def library_private() -> set[str]:
    return _library_private_names()


def test_no_module_touches_a_private_name_of_flask_jwt_extended_limits_or_waitress(trees, library_private):
    own = _own_private_names(trees)
    found = {
        name: problems
        for name, tree in trees.items()
        if name not in EXCEPTIONS and (problems := violations(tree, library_private, own))
    }
    assert found == {}


def test_the_named_exceptions_still_exist_and_still_need_their_exception(trees, library_private):
    for name in EXCEPTIONS:
        assert violations(trees[name], library_private, set()), f"{name} is on public APIs now: drop its exception"


@pytest.mark.parametrize(
    "source",
    [
        "from flask_jwt_extended.view_decorators import _decode_jwt_from_headers",
        "from flask_jwt_extended.internal_utils import get_jwt_manager as m\nm()._decode_jwt_from_config('t')",
        "import limits.storage\ngetattr(storage, '_MemoryStorage__expire_events')()",
        "from waitress.channel import HTTPChannel\nHTTPChannel._flush_some",
        "from flask_jwt_extended import JWTManager\nclass M(JWTManager):\n    def _decode_jwt_from_config(self): ...",
        "import flask_jwt_extended.view_decorators as v\nv.get_unverified_jwt_headers = print",
    ],
)
def test_the_check_sees_each_way_of_reaching_a_private_name(source, library_private):
    assert violations(ast.parse(source), library_private, set())


def test_only_auth_imports_flask_jwt_extended_and_the_contract_says_so(trees):
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    (contract,) = [c for c in settings["contracts"] if c.get("forbidden_modules") == ["flask_jwt_extended"]]
    siblings = {
        f"eventory_backend.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.name != "__init__.py") or (path / "__init__.py").is_file()
    }
    assert set(contract["source_modules"]) == siblings - {"eventory_backend.auth"}
    importers = {
        name
        for name, tree in trees.items()
        for node in ast.walk(tree)
        if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "flask_jwt_extended")
        or (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "flask_jwt_extended" for a in node.names))
    }
    assert importers and all(name.startswith("auth/") for name in importers), importers
