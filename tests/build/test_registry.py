"""The builder registry: lookup by solution, and languages added from outside."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelarena.build import Builder, build_solution, register_builder, registry
from kernelarena.build.python_builder import PythonBuilder
from kernelarena.build.registry import ENTRY_POINT_GROUP, find_builder, unregister_builder
from kernelarena.build.torch_extension_builder import TorchExtensionBuilder
from kernelarena.build.tvm_ffi_builder import TvmFfiBuilder
from kernelarena.errors import BuildError

from .conftest import make_solution


class ConstantBuilder(Builder):
    """A builder for a made-up dialect: the solution's only file holds a number, the entry returns it."""

    name = "constant"

    def can_build(self, solution):
        return solution.entry_file.endswith(".const")

    def compile(self, solution, target, src_dir: Path, out_dir: Path, module_name: str) -> str:
        value = float((src_dir / solution.entry_file).read_text())
        (out_dir / "value.txt").write_text(repr(value))
        return f"parsed {value}"

    def load(self, solution, target, src_dir, out_dir, module_name):
        value = float((out_dir / "value.txt").read_text())
        return lambda: value


@pytest.fixture
def constant_builder():
    register_builder(ConstantBuilder)
    yield ConstantBuilder
    unregister_builder(ConstantBuilder)


def test_a_registered_builder_builds_its_solutions(cache_dir, constant_builder):
    solution = make_solution("const_solution", "python", "value.const::run", {"value.const": "42\n"})
    assert isinstance(find_builder(solution), ConstantBuilder)
    runnable = build_solution(solution)
    assert runnable() == 42.0 and runnable.build_log == "parsed 42.0"
    assert runnable.cache_key.startswith("constant-")
    # Other Python solutions still go to the built-in builder.
    assert isinstance(find_builder(make_solution("p", "python", "m.py::run", {"m.py": "x"})), PythonBuilder)


def test_unregistering_restores_the_builtin(cache_dir):
    register_builder(ConstantBuilder)
    unregister_builder(ConstantBuilder)
    solution = make_solution("const_solution", "python", "value.const::run", {"value.const": "42\n"})
    with pytest.raises(BuildError, match="not a Python file"):
        build_solution(solution)


def test_binding_picks_the_native_builder():
    files = {"k.cpp": "int x;"}
    assert isinstance(find_builder(make_solution("a", "cpp", "k.cpp::run", files, binding="torch")),
                      TorchExtensionBuilder)
    assert isinstance(find_builder(make_solution("b", "cpp", "k.cpp::run", files, binding="tvm-ffi")), TvmFfiBuilder)
    assert isinstance(find_builder(make_solution("c", "cuda", "k.cpp::run", files)), TvmFfiBuilder)  # default


def test_register_rejects_what_is_not_a_builder():
    with pytest.raises(TypeError, match="not a kernelarena.build.Builder"):
        register_builder(object)


PLUGIN = """
from kernelarena.build import Builder


class DoublingBuilder(Builder):
    name = "doubling"

    def can_build(self, solution):
        return solution.entry_file.endswith(".double")

    def compile(self, solution, target, src_dir, out_dir, module_name):
        return ""

    def load(self, solution, target, src_dir, out_dir, module_name):
        value = 2 * int((src_dir / solution.entry_file).read_text())
        return lambda: value
"""


def install_plugin(tmp_path, monkeypatch, entry_points: str):
    """An installed distribution (a .dist-info folder on sys.path) declaring ``entry_points``."""
    (tmp_path / "ka_test_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "ka_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ka-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry_points}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins", None)  # rediscover entry points in this test only


def test_builders_declared_as_entry_points_are_used(tmp_path, monkeypatch, cache_dir):
    install_plugin(tmp_path, monkeypatch, "doubling = ka_test_plugin:DoublingBuilder")
    solution = make_solution("doubled", "python", "n.double::run", {"n.double": "21"})
    assert type(find_builder(solution)).__name__ == "DoublingBuilder"
    assert build_solution(solution)() == 42


def test_a_broken_entry_point_warns_and_is_skipped(tmp_path, monkeypatch, cache_dir):
    install_plugin(tmp_path, monkeypatch, "broken = ka_test_plugin:NoSuchBuilder")
    with pytest.warns(RuntimeWarning, match="'broken'.*failed to load"):
        builder = find_builder(make_solution("p", "python", "m.py::run", {"m.py": "x"}))
    assert isinstance(builder, PythonBuilder)
