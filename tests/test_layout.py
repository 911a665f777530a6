"""The package's shape, checked over every module of hwml/ (hwml/DESIGN.md draws it):

- imports run one way, by package prefix (LAYERS): a lower layer never imports a higher one, and
  packages side by side in one layer (hwml.phoneme | hwml.speaker, hwml.cli | hwml.serve |
  hwml.lessons) never import each other. Imports inside functions count: a lazy import still
  makes the dependency, it only moves a circle from import time to call time;
- no import circle between modules;
- no private name (`_name`) is imported from another module;
- every `HWML_*` environment variable is read in hwml/settings.py and listed in the README;
- every constant is defined in one module (parallel packages aside);
- the modules the page and the CLI import before they need a model stay free of torch.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module belongs to the first entry whose prefix names it or its package.
LAYERS = [
    ["hwml.errors"],
    ["hwml.machine"],
    ["hwml.settings"],
    ["hwml.safeio", "hwml.timing", "hwml.i18n"],
    ["hwml.audio"],
    ["hwml.data"],
    ["hwml.corpus"],
    ["hwml.models"],
    ["hwml.runs"],
    ["hwml.train"],
    ["hwml.phoneme", "hwml.speaker"],
    ["hwml.align"],
    ["hwml.importers"],
    ["hwml.api"],
    ["hwml.cli", "hwml.serve", "hwml.lessons"],
    ["hwml.ui"],
    ["hwml.__main__"],
]
ROOT_PACKAGE = "hwml"  # hwml/__init__.py: the version only


@cache
def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "hwml").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) of every import in a module, anywhere in it."""
    path, out = modules()[name], []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            out.append((source, [a.name for a in node.names], node.lineno))
    return [(m, ns, line) for m, ns, line in out if m == "hwml" or m.startswith("hwml.")]


@cache
def graph() -> dict[str, set[str]]:
    """Module -> the hwml modules it imports (a `from pkg import sub` names the submodule)."""
    mods, edges = modules(), {}
    for name in mods:
        deps = set()
        for source, names, _ in imports(name):
            subs = [f"{source}.{n}" for n in names if f"{source}.{n}" in mods]
            deps |= set(subs)
            if len(subs) < len(names) or not names:
                deps.add(source)
        edges[name] = {d for d in deps if d in mods and d != name}
    return edges


def layer_of(name: str) -> tuple[int, str]:
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                return rank, prefix
    raise AssertionError(f"{name}: in no layer of tests/test_layout.py's LAYERS; add it where it belongs")


def test_every_module_has_a_layer():
    for name in modules():
        if name != ROOT_PACKAGE:
            layer_of(name)


def test_imports_only_go_down_the_layers():
    wrong = []
    for name, deps in graph().items():
        if name == ROOT_PACKAGE:
            continue
        rank, prefix = layer_of(name)
        for dep in deps:
            if dep == ROOT_PACKAGE:
                continue
            dep_rank, dep_prefix = layer_of(dep)
            if dep_rank > rank or (dep_rank == rank and dep_prefix != prefix):
                wrong.append(f"{name} ({prefix}) imports {dep} ({dep_prefix})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_no_import_circles():
    edges, state, stack, circles = graph(), {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(edges[node]):
            if state.get(dep) == "open":
                circles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_no_private_names_across_modules():
    found = []
    for name in modules():
        for source, names, line in imports(name):
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            if private and source != name:
                found.append(f"{modules()[name].relative_to(ROOT)}:{line}: {', '.join(private)} from {source}")
    assert not found, "private names imported from another module:\n" + "\n".join(found)


ENV_READ = re.compile(r"""(os\.environ(\.get)?[\[(]|os\.getenv\()\s*["']HWML_""")


def test_every_hwml_variable_is_read_in_settings_and_listed_in_the_readme():
    from hwml import settings

    readers = [p.relative_to(ROOT) for p in modules().values() if ENV_READ.search(p.read_text(encoding="utf-8"))]
    assert readers == [Path("hwml/settings.py")], readers
    source = (ROOT / "hwml" / "settings.py").read_text(encoding="utf-8")
    used = set(re.findall(r'"(HWML_[A-Z_]+)"', source))
    listed = {name for name, _, _ in settings.VARIABLES}
    assert used == listed, f"read but not listed: {used - listed}, listed but not read: {listed - used}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not [name for name in listed if f"`{name}`" not in readme], "README's Settings table lacks some"


# The same name in parallel modules on purpose: each task package's presets, each course format's
# class count and label file, each panel's task. Any other constant is defined in one module only.
PARALLEL = {"PRESETS", "MODEL_KEYS", "NOTES", "N_CLASSES", "TEST_LABELS", "KIND"}


def test_each_constant_is_defined_once():
    where: dict[str, list[str]] = {}
    for name, path in modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for t in targets:
                for n in t.elts if isinstance(t, ast.Tuple) else [t]:
                    if isinstance(n, ast.Name) and n.id.isupper() and len(n.id) > 1 and n.id not in PARALLEL:
                        where.setdefault(n.id, []).append(name)
    twice = {k: v for k, v in where.items() if len(v) > 1}
    assert not twice, f"constants defined in more than one module: {twice}"


# long, but one job each (a module doing several jobs is split instead)
LONG_BUT_ONE_JOB = {
    "hwml.corpus.sentences": "the grammar's word lists, one word a line, and the lines that combine them"
}


def test_no_module_is_much_over_400_lines():
    lines = {name: len(p.read_text(encoding="utf-8").splitlines()) for name, p in modules().items()}
    long = {name: n for name, n in lines.items() if n > 450 and name not in LONG_BUT_ONE_JOB}
    assert not long, long


TORCH_FREE = """
import sys
for name in sys.argv[1:]:
    __import__(name)
heavy = sorted(m for m in ("torch", "torchaudio", "gradio") if m in sys.modules)
print(" ".join(heavy) or "-")
"""


@pytest.mark.parametrize(
    "names",
    [
        ["hwml.settings", "hwml.api", "hwml.cli", "hwml.runs.folder", "hwml.i18n", "hwml.audio.params"],
        ["hwml.phoneme.presets", "hwml.speaker.presets", "hwml.serve.workspace", "hwml.serve.jobs"],
        ["hwml.serve.who_is_speaking", "hwml.lessons.presets"],
    ],
)
def test_what_the_page_and_the_cli_import_first_needs_no_torch(names):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, *names], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["-"], f"{names} import {proc.stdout.strip()}"
