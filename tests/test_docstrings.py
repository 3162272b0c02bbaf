"""Every public function in nnlite.kernels documents all of its parameters (numpydoc)."""
import importlib
import inspect
import pkgutil
import re

import pytest

import nnlite.kernels

MODULES = [importlib.import_module(f"nnlite.kernels.{m.name}")
           for m in pkgutil.iter_modules(nnlite.kernels.__path__)]
PUBLIC = [(mod.__name__, name, fn) for mod in MODULES
          for name, fn in inspect.getmembers(mod, inspect.isfunction)
          if not name.startswith("_") and fn.__module__ == mod.__name__]


@pytest.mark.parametrize("module, name, fn", PUBLIC, ids=[f"{m}.{n}" for m, n, _ in PUBLIC])
def test_parameters_are_documented(module, name, fn):
    doc = inspect.getdoc(fn) or ""
    # numpydoc entries: "name : type" or "a, b : type" at the start of a line.
    documented = {p.strip() for line in re.findall(r"^(\w+(?:\s*,\s*\w+)*)\s*:", doc, re.M)
                  for p in line.split(",")}
    missing = [p for p in inspect.signature(fn).parameters if p not in documented]
    assert not missing, f"{module}.{name}: parameters {missing} are not in its docstring"
