"""A new user's first hour: the README and the docs followed as written, in fresh folders,
in subprocesses: the two set-up commands, the step-by-step commands (init, check, simulate,
preview, info) and the Python guide's snippets saved as scripts."""

import os
import re
import shlex
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PYTHON_GUIDE = (ROOT / "docs" / "guide" / "python.md").read_text()


def section(title: str) -> str:
    """The README's text under ``## title``, up to the next ``## ``."""
    return README.split(f"\n## {title}\n")[1].split("\n## ")[0]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def shell(command: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run one README line with bash in ``cwd``; the console script is this environment's."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{command!r} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def commands(block: str) -> list[str]:
    """The command lines of a bash block, without comments."""
    lines = [line.split(" #")[0].strip() for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_setup_commands_as_written(tmp_path):
    """`pip install -e ".[test]" && jscan demo` and `... && pytest`: the install is the
    environment running this test (its [test] extra is checked to be installed); the
    command after it is run as written (pytest only collects: it would run this test)."""
    setup = blocks(section("Set up and run"), "bash")
    assert setup[0].strip() == 'pip install -e ".[test]" && jscan demo'
    assert setup[2].strip() == 'pip install -e ".[test]" && pytest'
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in extras["optional-dependencies"]["test"]:
        name = re.split(r"[<>=\[ ]", requirement)[0]
        assert metadata.version(name), f"{name} of the [test] extra is not installed"
    out = shell("jscan demo", tmp_path)
    assert "done: 4096 positions in 8 blocks" in out.stderr
    assert (tmp_path / "jscan-demo.zarr" / "zarr.json").is_file()
    collected = shell(f"pytest --collect-only -q {shlex.quote(str(ROOT / 'tests'))}", ROOT)
    assert "tests collected" in collected.stdout or "collected" in collected.stdout


def test_step_by_step_commands_as_written(tmp_path):
    steps = commands(blocks(section("Set up and run"), "bash")[1])
    assert [s.split()[1] for s in steps] == ["init", "check", "simulate", "preview", "info"]
    outputs = [shell(step, tmp_path) for step in steps]
    assert (tmp_path / "scan.toml").is_file() and (tmp_path / "check.png").is_file()
    assert "no store was written" in outputs[1].stdout  # check.png was
    assert "done: 4096 positions" in outputs[2].stderr
    assert (tmp_path / "preview.png").stat().st_size > 10_000
    assert "blocks done: 8/8" in outputs[4].stdout
    assert outputs[2].stderr.count("\n") <= 6  # jscan's own lines, no Dask log lines


def test_python_snippets_as_scripts(tmp_path):
    first, forward = blocks(PYTHON_GUIDE, "python")[:2]
    assert 'if __name__ == "__main__":' in first
    shell("jscan init scan.toml", tmp_path)  # the snippet runs beside scan.toml
    (tmp_path / "first.py").write_text(first)
    out = shell(f"{shlex.quote(sys.executable)} first.py", tmp_path)
    assert out.stdout.splitlines() == ["True", "(10, 64, 64)"]
    (tmp_path / "forward.py").write_text(forward)
    shell(f"{shlex.quote(sys.executable)} forward.py", tmp_path)


pytestmark = pytest.mark.slow
