"""The docs name what is there: every `jscan.x.y` written in backticks in the README, the docs
pages and the package's own docstrings and comments is a module or a name of this tree (the
changelog is left out: it names what moved). Modules that move leave no stale pointers."""

import importlib
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"`(jscan(?:\.[A-Za-z_]\w*)+)")
TEXTS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("**/*.md")),
    *sorted((ROOT / "docs" / "gallery").glob("*.py")),
    *sorted((ROOT / "jscan").rglob("*.py")),
]
TEXTS = [p for p in TEXTS if not {"_build", "auto_gallery"} & set(p.parts)]


def resolves(dotted: str) -> bool:
    """True when the longest importable prefix of ``dotted`` has the rest as attributes, and
    a function or class named in a plain module is that module's own (a package may
    re-export; a module that merely imports a name is a stale pointer to it)."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            if not hasattr(obj, attr):
                return False
            owner, obj = obj, getattr(obj, attr)
            if (
                isinstance(owner, types.ModuleType)
                and not hasattr(owner, "__path__")  # a plain module, not a package
                and isinstance(obj, type | types.FunctionType)
                and obj.__module__ != owner.__name__
            ):
                return False
        return True
    return False


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_jscan_name_in_the_text_is_there(path):
    names = {m.group(1).rstrip(".") for m in NAME.finditer(path.read_text())}
    missing = sorted(n for n in names if not resolves(n))
    assert not missing, f"{path.relative_to(ROOT)} names what is not there: {missing}"


def test_a_stale_name_is_found():
    assert resolves("jscan.pipeline.run.plan.plan_scan")
    assert not resolves("jscan.pipeline.plan.plan_scan")  # moved to jscan.pipeline.run.plan
    assert not resolves("jscan.pipeline.store.no_such_function")
    assert not resolves("jscan.pipeline.run.worker.ScanJob")  # imported there, defined in job
    assert resolves("jscan.pipeline.store.create")  # a package's re-export
