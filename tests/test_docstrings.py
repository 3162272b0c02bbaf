"""Every public function and method in nnlite documents all of its parameters (numpydoc).

The names are read from the docstring's ``Parameters`` section only (up to the next
section header), one entry per line at the section's indentation: ``name : type``,
``a, b : type`` or a bare ``name``. A name that appears under ``Returns`` or in prose
does not count. A class documents its constructor's parameters in its own docstring
(a dataclass its fields, under ``Attributes``); its public methods and ``__call__``
document theirs.
"""
import dataclasses
import importlib
import inspect
import pkgutil
import re

import pytest

import nnlite

MODULES = [importlib.import_module(m.name)
           for m in pkgutil.walk_packages(nnlite.__path__, prefix="nnlite.")]


def _public_callables(mod):
    """(qualified name, function, docstring that must document its parameters)."""
    for name, fn in inspect.getmembers(mod, inspect.isfunction):
        if not name.startswith("_") and fn.__module__ == mod.__name__:
            yield name, fn, inspect.getdoc(fn)
    for cname, cls in inspect.getmembers(mod, inspect.isclass):
        if cname.startswith("_") or cls.__module__ != mod.__name__:
            continue
        if not dataclasses.is_dataclass(cls) and "__init__" in vars(cls):
            yield f"{cname}.__init__", cls.__init__, inspect.getdoc(cls)
        for name, attr in vars(cls).items():
            fn = attr.__func__ if isinstance(attr, (classmethod, staticmethod)) else attr
            if inspect.isfunction(fn) and (not name.startswith("_") or name == "__call__"):
                yield f"{cname}.{name}", fn, inspect.getdoc(fn)


PUBLIC = [(mod.__name__, name, fn, doc) for mod in [nnlite] + MODULES
          for name, fn, doc in _public_callables(mod)]
DATACLASSES = [(mod.__name__, cname, cls) for mod in MODULES
               for cname, cls in inspect.getmembers(mod, dataclasses.is_dataclass)
               if isinstance(cls, type) and cls.__module__ == mod.__name__]

_UNDERLINE = re.compile(r"^-{3,}\s*$")
_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::|$)")


def numpydoc_sections(doc):
    """{section title: its lines} of a dedented numpydoc docstring."""
    lines = doc.splitlines()
    sections, title = {}, None
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1]) and line.strip():
            title = line.strip()
            sections[title] = []
        elif title is not None and not _UNDERLINE.match(line):
            sections[title].append(line)
    return sections


def documented_parameters(doc, section="Parameters"):
    """The names a numpydoc ``Parameters`` (or other) section documents."""
    names = set()
    for line in numpydoc_sections(doc).get(section, []):
        if line[:1].isspace():  # a description line, not an entry
            continue
        m = _ENTRY.match(line)
        if m:
            names.update(p.strip().lstrip("*") for p in m.group(1).split(","))
    return names


def test_the_parser_reads_only_the_parameters_section():
    doc = inspect.cleandoc("""Summary naming x and y : here.

        Parameters
        ----------
        a, b : int
            Two.
        c
            A bare name.
        *args : float
            More.

        Returns
        -------
        x : int
            Not a parameter.
        """)
    assert documented_parameters(doc) == {"a", "b", "c", "args"}
    assert documented_parameters("x : int\n    Not in a section.") == set()


@pytest.mark.parametrize("module, name, fn, doc", PUBLIC,
                         ids=[f"{m}.{n}" for m, n, _, _ in PUBLIC])
def test_parameters_are_documented(module, name, fn, doc):
    documented = documented_parameters(doc or "")
    params = [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
    missing = [p for p in params if p not in documented]
    assert not missing, f"{module}.{name}: parameters {missing} are not in its Parameters section"


@pytest.mark.parametrize("module, name, cls", DATACLASSES,
                         ids=[f"{m}.{n}" for m, n, _ in DATACLASSES])
def test_dataclass_fields_are_documented(module, name, cls):
    documented = documented_parameters(inspect.getdoc(cls) or "", "Attributes")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in documented]
    assert not missing, f"{module}.{name}: fields {missing} are not in its Attributes section"
