"""Imports only go down the layers, read from the source with `ast` (nothing is imported).

    jscan.errors                     nothing from jscan
    jscan.core     (JAX, no I/O)     jscan.core, jscan.errors
    jscan.inputs   (numpy)           jscan.inputs, jscan.errors; no JAX
    jscan.pipeline                   core, inputs, pipeline, errors; inside it
      .microscope  (JAX)               nothing of the pipeline
      .store       (the format)        .store, .microscope (the ground-truth probe)
      .live        (watching a run)    .live
      .run         (running a scan)    .run, .store, .live, .microscope
    cli, analysis, preview, ...      anything (the `jscan` package itself is top: it
                                     re-exports the core and the pipeline; only its
                                     __version__ may be read from below)

No jscan module imports, at its top level, a module that imports it back (directly or
through others). Every import of a jscan module (in the package, the tests, the examples
and the benchmarks) names a module of this tree and a name that module defines: an
installed copy of jscan elsewhere cannot stand in for a module that was moved.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jscan"
TOP = (
    "jscan",
    "jscan.cli",
    "jscan.cliargs",
    "jscan.analysis",
    "jscan.export",
    "jscan.preview",
    "jscan.scopes",
)
# Modules and calls that touch files, processes or the environment: none in jscan.core.
IO_MODULES = (
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "subprocess",
    "zarr",
    "xarray",
    "dask",
    "distributed",
    "numcodecs",
)
IO_CALLS = ("open",)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def imports(path: Path, package: str | None = None):
    """(line, imported module, names or None) of every import in a file, at any depth;
    relative imports are resolved against ``package`` (by default the file's own)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if package is None:
        package = module_name(path)
        if path.name != "__init__.py":
            package = package.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this file's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base, [a.name for a in node.names]


def jscan_targets(module, names):
    """The jscan modules an import reaches: `from jscan.a import b` reaches jscan.a.b when
    that is a module, else jscan.a."""
    if module != "jscan" and not module.startswith("jscan."):
        return []
    if names is None:
        return [module]
    if module == "jscan":  # the package's own metadata is no import of the top layer
        names = [n for n in names if n not in METADATA]
    subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES]
    return subs + ([module] if len(subs) < len(names) else [])


METADATA = {"__version__"}


def layer(module: str) -> str:
    for name in ("errors", "core", "inputs", "pipeline"):
        if module == f"jscan.{name}" or module.startswith(f"jscan.{name}."):
            return name
    return "top"


ALLOWED = {
    "errors": set(),
    "core": {"core", "errors"},
    "inputs": {"inputs", "errors"},
    "pipeline": {"core", "inputs", "pipeline", "errors"},
    "top": {"core", "inputs", "pipeline", "errors", "top"},
}


# The pipeline's parts (`part`) and the parts each may import.
PARTS = {
    "microscope": set(),
    "store": {"store", "microscope"},
    "live": {"live"},
    "run": {"run", "store", "live", "microscope"},
}


def part(module: str) -> str | None:
    """The pipeline part of a module (None for jscan.pipeline itself and outside it)."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["jscan", "pipeline"] else None


def rule_breaks(modules=MODULES):
    found = []
    for name, path in modules.items():
        own = layer(name)
        where = shown(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for line, module, names in imports(path, package):
            for target in jscan_targets(module, names):
                if layer(target) not in ALLOWED[own]:
                    found.append(
                        f"{where}:{line}: {name} ({own}) imports {target} ({layer(target)})"
                    )
                mine, theirs = part(name), part(target)
                if mine and theirs and theirs not in PARTS[mine]:
                    found.append(
                        f"{where}:{line}: {name} (pipeline.{mine}) imports {target} "
                        f"(pipeline.{theirs})"
                    )
            root = module.split(".")[0]
            if own == "inputs" and root in ("jax", "jaxlib"):
                found.append(f"{where}:{line}: {name} (inputs: numpy only) imports {module}")
            if own == "core" and root in IO_MODULES:
                found.append(f"{where}:{line}: {name} (core: no I/O) imports {module}")
    return found


def top_level_imports(modules=MODULES) -> dict[str, set[str]]:
    """The jscan modules each module imports at its top level (not inside a function)."""
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        top = ast.Module(body=[n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)])
        graph[name] = set()
        for node in top.body:
            if isinstance(node, ast.Import):
                found = [(a.name, None) for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found = [(base, [a.name for a in node.names])]
            for module, names in found:
                graph[name] |= {t for t in jscan_targets(module, names) if t in modules}
    return graph


def circles(graph) -> list[list[str]]:
    """Every import circle of ``graph``, each once, from its smallest module."""
    found = set()

    def walk(start, node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                found.add(tuple(path))
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return [list(c) for c in sorted(found)]


def core_io_calls(modules=MODULES):
    found = []
    for name, path in modules.items():
        if layer(name) != "core":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in IO_CALLS
            ):
                found.append(f"{shown(path)}:{node.lineno}: {name} calls {node.func.id}(")
    return found


def test_the_layers_are_there():
    layers = {layer(name) for name in MODULES}
    assert layers == {"errors", "core", "inputs", "pipeline", "top"}, layers
    assert {"jscan.core.kernel", "jscan.inputs.config", "jscan.pipeline.run.simulate"} <= set(
        MODULES
    )


def test_imports_only_go_down():
    breaks = rule_breaks()
    assert not breaks, "imports against the layers:\n" + "\n".join(breaks)


def test_no_module_imports_itself_back():
    found = circles(top_level_imports())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert circles(graph) == [["a", "b", "c"], ["e"]]


def test_core_does_no_io():
    calls = core_io_calls()
    assert not calls, "I/O in jscan.core:\n" + "\n".join(calls)


def test_the_checker_names_each_violation(tmp_path):
    """A core module that imports the pipeline (also relatively) and os, and opens a file;
    an inputs module that imports JAX and the core."""
    core = tmp_path / "kernel.py"
    core.write_text(
        "import os\nfrom ..pipeline.run import plan\nfrom jscan.errors import ConfigError\n"
        "from . import optics\n\n\ndef f():\n    return open('x')\n"
    )
    inputs = tmp_path / "config.py"
    inputs.write_text("import jax.numpy as jnp\nfrom jscan.core.placement import placement\n")
    modules = {"jscan.core.kernel": core, "jscan.inputs.config": inputs}
    breaks = rule_breaks(modules)
    assert breaks == [
        f"{core}:1: jscan.core.kernel (core: no I/O) imports os",
        f"{core}:2: jscan.core.kernel (core) imports jscan.pipeline.run.plan (pipeline)",
        f"{inputs}:1: jscan.inputs.config (inputs: numpy only) imports jax.numpy",
        f"{inputs}:2: jscan.inputs.config (inputs) imports jscan.core.placement (core)",
    ], breaks
    assert core_io_calls(modules) == [f"{core}:8: jscan.core.kernel calls open("]


def defined_names(path: Path) -> set[str]:
    """Names a module defines at its top level (and, for jscan/__init__, its lazy names)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
                if isinstance(target, ast.Name) and target.id in ("_PIPELINE", "_LAZY"):
                    names |= set(ast.literal_eval(node.value))
    return names


SOURCES = [
    p
    for folder in ("jscan", "tests", "examples", "benchmarks")
    for p in sorted((ROOT / folder).rglob("*.py"))
]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_jscan_import_names_a_module_of_this_tree(path):
    missing = []
    for line, module, names in imports(path):
        if module != "jscan" and not module.startswith("jscan."):
            continue
        if module not in MODULES:
            missing.append(f"{line}: no module {module}")
            continue
        for name in names or []:
            if f"{module}.{name}" not in MODULES and name not in defined_names(MODULES[module]):
                missing.append(f"{line}: {module} has no {name}")
    assert not missing, f"{path.relative_to(ROOT)}:\n" + "\n".join(missing)


def test_the_client_of_a_run_imports_no_jax():
    """Planning, creating, submitting and watching a run need no JAX: only the processes that
    simulate (workers, the lazy graph) import it, so the client stays small at any scale."""
    import subprocess
    import sys

    code = (
        "import sys, jscan, jscan.cli, jscan.pipeline.run.simulate, jscan.pipeline.run.prepare, "
        "jscan.pipeline.store.integrity, jscan.preview, jscan.analysis; print('jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
