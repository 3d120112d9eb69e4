"""The install maps the folders onto the ``disbench`` namespace only."""
import subprocess
import sys
from pathlib import Path


def test_namespace_is_disbench():
    import disbench
    import disbench.baselines
    import disbench.datasets
    import disbench.metrics

    root = Path(__file__).resolve().parents[1]
    assert Path(disbench.__file__).parent == root / "bench"
    assert Path(disbench.datasets.__file__).parent == root / "datasets"
    assert Path(disbench.metrics.__file__).parent == root / "metrics"
    assert Path(disbench.baselines.__file__).parent == root / "baselines"


def test_no_top_level_modules_named_like_folders(tmp_path):
    # Run from an unrelated folder so the repo root is not on sys.path. HuggingFace
    # `datasets` may legitimately be installed: whatever is found must not be ours.
    root = str(Path(__file__).resolve().parents[1])
    code = (
        "import importlib.util, disbench.datasets\n"
        "for m in ('datasets', 'metrics', 'bench', 'baselines'):\n"
        "    s = importlib.util.find_spec(m)\n"
        "    print(m, s.origin if s else None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert set(lines) == {"datasets", "metrics", "bench", "baselines"}
    for name, origin in lines.items():
        assert origin == "None" or not origin.startswith(root), (name, origin)


def test_cli_help_lists_commands():
    from disbench.cli import COMMANDS

    out = subprocess.run([sys.executable, "-m", "disbench", "--help"], capture_output=True,
                         text=True, check=True)
    for name in COMMANDS:
        assert f"    {name} " in out.stdout, f"'disbench --help' does not list {name}"


def test_every_command_has_help():
    from disbench.cli import COMMANDS

    root = Path(__file__).resolve().parents[1]
    modules = sorted(p.stem for p in (root / "bench" / "cli").glob("*.py") if p.stem != "__init__")
    assert sorted(COMMANDS) == modules, "every module of disbench.cli is a registered command"
    for name in COMMANDS:
        out = subprocess.run([sys.executable, "-m", "disbench", name, "--help"],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"disbench {name} --help failed: {out.stderr}"
        assert f"usage: disbench {name}" in out.stdout


def test_atomic_write_has_normal_permissions(tmp_path):
    import os

    from disbench.atomic import write_text

    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").read_text() == "x"
    assert oct((tmp_path / "a.txt").stat().st_mode & 0o777) == oct(0o644)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
