"""Code fingerprints: which `ame` source a pipeline step runs, hashed blind to comments and layout.

A step's code is the import closure, within the `ame` package, of the modules its `ame <step>`
command imports (read from `ame/cli.py`'s `cmd_<step>` function and the helpers it calls). The
closure follows every import statement, at module level and inside functions, relative imports,
`importlib.import_module("ame.x")` strings, and the package data folders a module names (e.g.
`model_configs`, `reference`). Importing `ame.a.b` brings in `ame.a.b` itself, not the `ame.a`
package's `__init__` (keep package initialisers free of behaviour; they only re-export).

Each module is hashed as its syntax tree without docstrings (`ast.dump`, no line numbers), so
comments, docstrings and formatting never change a fingerprint; any statement does. Modules a
method does not use (`ame.spec.methods.Method.modules`, e.g. `ame.rsm` for methods without RSM)
are cut from that method's closure, so editing the RSM loss reruns only the RSM runs.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "ame"
ROOT = Path(__file__).resolve().parent


@functools.cache
def modules() -> dict[str, Path]:
    """Dotted name -> source file of every module of the package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


@functools.cache
def data_folders() -> dict[str, list[Path]]:
    """Package data folder name -> its non-Python files (schemas, model configs, reference CSVs)."""
    out = {}
    for folder in sorted(p for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix not in (".py", ".pyc"))
        if files and not (folder / "__init__.py").exists():
            out[folder.name] = files
    return out


@functools.cache
def _tree(name: str) -> ast.Module:
    return ast.parse(modules()[name].read_text(encoding="utf-8"), filename=str(modules()[name]))


def _resolve(name: str, level: int, current: str) -> str:
    if level == 0:
        return name
    is_package = modules()[current].name == "__init__.py"
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _imports(nodes, current: str) -> tuple[set[str], set[str]]:
    """(ame modules, package data folders) that `nodes` import or name. Module names given as
    strings count where the code imports by name (`importlib.import_module`)."""
    found, data = set(), set()
    known = modules()
    nodes = list(nodes)
    dynamic = any(isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(n.func, "id", None)) == "import_module"
                  for n in nodes)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module or "", node.level, current)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in known:
                    found.add(sub)
                elif base in known:
                    found.add(base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if dynamic and node.value in known and node.value.startswith(PACKAGE + "."):
                found.add(node.value)
            elif node.value in data_folders():
                data.add(node.value)
    return found, data


@functools.cache
def _direct(name: str) -> tuple[frozenset[str], frozenset[str]]:
    found, data = _imports(ast.walk(_tree(name)), name)
    found.discard(name)
    return frozenset(found), frozenset(data)


def closure(entries, exclude=()) -> tuple[list[str], list[str]]:
    """(sorted module names, sorted data folders) reachable from `entries`, not entering `exclude`."""
    exclude = set(exclude)
    seen: set[str] = set()
    data: set[str] = set()
    todo = [e for e in entries if e not in exclude]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found, folders = _direct(name)
        data |= folders
        todo += [m for m in found if m not in seen and m not in exclude]
    return sorted(seen), sorted(data)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@functools.cache
def normalised(name: str) -> str:
    """The module's syntax tree without docstrings, comments, line numbers or formatting."""
    source = modules()[name].read_text(encoding="utf-8")
    return ast.dump(_strip_docstrings(ast.parse(source)), include_attributes=False)


@functools.cache
def step_entries(step: str) -> tuple[str, ...]:
    """The `ame` modules that `ame <step>` imports: those of `cli.cmd_<step>` and its helpers."""
    tree = _tree(f"{PACKAGE}.cli")
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    name = "cmd_" + step.replace("-", "_")
    if name not in functions:
        steps = sorted(f[4:].replace("_", "-") for f in functions if f.startswith("cmd_"))
        raise ValueError(f"unknown step {step!r}; steps: {', '.join(steps)}")
    found: set[str] = set()
    todo, seen = [name], set()
    while todo:
        fn = functions[todo.pop()]
        seen.add(fn.name)
        mods, _ = _imports(ast.walk(fn), f"{PACKAGE}.cli")
        found |= mods
        calls = {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        todo += [c for c in calls if c in functions and c not in seen]
    return tuple(sorted(found))


def step_files(step: str, exclude=()) -> list[Path]:
    """Source and data files `ame <step>` runs (for DVC's dependencies), relative to the project."""
    names, data = closure(step_entries(step), exclude)
    files = [modules()[n] for n in names] + [f for d in data for f in data_folders()[d]]
    return sorted(f.relative_to(ROOT.parent) for f in files)


@functools.cache
def fingerprint(step: str, exclude: tuple[str, ...] = ()) -> str:
    """sha256 of the normalised code `ame <step>` runs (minus `exclude`d modules), 16 hex digits."""
    names, data = closure(step_entries(step), exclude)
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}\n{normalised(name)}\n".encode())
    for folder in data:
        for path in data_folders()[folder]:
            digest.update(f"{path.relative_to(ROOT)}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def files_of_steps(steps) -> list[str]:
    """Source and data files of several steps (a DVC stage's code dependencies), POSIX paths."""
    return sorted({p.as_posix() for step in steps for p in step_files(step)})
