"""Dependencies point one way (DESIGN.md): cli -> sweeps -> run -> {datasets, baselines,
metrics} -> leaf utilities; report reads run folders through the run-folder module only.

Every ``import`` in the source tree (module level or inside functions) is checked against
the table below, so a package that reaches across the allowed layers fails here.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> import name of its package
FOLDERS = {"bench": "disbench", "datasets": "disbench.datasets",
           "metrics": "disbench.metrics", "baselines": "disbench.baselines"}
#: "=name" allows that module only, not its submodules
LEAF = ("=disbench", "disbench.errors", "disbench.paths", "disbench.atomic")
LOWER = ("disbench.datasets", "disbench.metrics", "disbench.baselines")
#: package -> what it may import from disbench (a name allows its submodules too)
ALLOWED = {
    "disbench.datasets": (*LEAF, "disbench.datasets"),
    "disbench.metrics": (*LEAF, "disbench.metrics"),
    "disbench.baselines": (*LEAF, "disbench.baselines"),
    "disbench.run": (*LEAF, *LOWER, "disbench.run"),
    # report reads run folders through the run-folder module, and the settings declaration
    # (which settings make a leaderboard variant) from the run config
    "disbench.report": (*LEAF, *LOWER, "disbench.run.folder", "disbench.run.config",
                        "disbench.run.settings", "disbench.report"),
    "disbench.sweeps": (*LEAF, *LOWER, "disbench.run", "disbench.report", "disbench.sweeps"),
    "disbench.cli": ("=disbench", *LOWER, "disbench.run", "disbench.sweeps", "disbench.report",
                     "disbench.cli", *LEAF[1:]),
    "disbench.perf": ("=disbench", *LOWER, "disbench.run", "disbench.perf", *LEAF[1:]),
    # the leaf utilities import nothing of disbench but each other
    "disbench.errors": (), "disbench.paths": (),
    "disbench.atomic": ("disbench.errors", "disbench.paths"),
    "disbench.__main__": ("disbench.cli",),
    "=disbench": (),
}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [FOLDERS[rel.parts[0]], *rel.with_suffix("").parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    """The most specific key of ALLOWED that ``module`` belongs to."""
    keys = [k for k in ALLOWED if module == k.lstrip("=")
            or not k.startswith("=") and module.startswith(k + ".")]
    if not keys:
        return ""
    return max(keys, key=len)


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            if name == "disbench":  # from disbench import x: x is the module imported
                out[-1:] = [(node.lineno, f"disbench.{a.name}") for a in node.names]
    return [(n, m) for n, m in out if m == "disbench" or m.startswith("disbench.")]


def allowed(importer: str, target: str) -> bool:
    pkg = package_of(importer)
    if target == "disbench.__version__":
        return True
    return any(target == a.lstrip("=") or not a.startswith("=") and target.startswith(a + ".")
               for a in ALLOWED.get(pkg, ()))


SOURCES = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_every_module_has_a_layer():
    assert len(SOURCES) > 50
    unplaced = [str(p) for p in SOURCES if not package_of(module_name(p))]
    assert not unplaced, f"modules outside every layer of the table: {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_respect_the_layers(path):
    module = module_name(path)
    bad = [f"line {n}: {target}" for n, target in imports(path, module)
           if not allowed(module, target)]
    assert not bad, f"{module} ({package_of(module)}) imports across layers: {bad}"


def test_the_checker_catches_a_crossing():
    assert not allowed("disbench.metrics.judge", "disbench.datasets.download")
    assert not allowed("disbench.report.plots", "disbench.run.trainer")
    assert not allowed("disbench.run.trainer", "disbench.sweeps.spec")
    assert allowed("disbench.report.plots", "disbench.run.folder")
    assert allowed("disbench.cli.train", "disbench.run.trainer")
