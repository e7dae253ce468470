"""kernelarena.env is the one place that reads the environment; docs/settings.md lists what it reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kernelarena import env

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kernelarena"

# Uses of os.environ outside env.py that are no settings of ours, so they stay where they are:
# - build/tvm_ffi_builder.py sets TVM_FFI_CUDA_ARCH_LIST (tvm-ffi's own variable) for the duration of one build
#   and puts the previous value back, which it must read first.
ALLOWED_READS = {"kernelarena/build/tvm_ffi_builder.py": 1}
# - an operator's Triton module (kernels/<op>/triton.py) is embedded verbatim in dataset solutions that run
#   outside kernelarena (standard library, torch and triton only), so it reads Triton's own TRITON_INTERPRET
#   itself; only that variable.
EMBEDDED_SOURCES = "kernelarena/kernels/*/triton.py"
EMBEDDED_MAY_READ = "TRITON_INTERPRET"


def _is_os_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)
            and node.value.id == "os")


def environment_uses(source: str):
    """(line, "read" | "write") for each use of os.environ / os.getenv / a name imported from os for it.

    Writes are assignments and deletions of ``os.environ[...]`` and ``os.environ.setdefault``/``update``/``pop``
    used as statements (setting the value a library reads: TRITON_INTERPRET for Triton, for instance).
    """
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(alias.name in ("environ", "getenv", "environb", "getenvb") for alias in node.names):
                uses.append((node.lineno, "read"))
        elif isinstance(node, ast.Attribute) and node.attr == "getenv" and isinstance(node.value, ast.Name) \
                and node.value.id == "os":
            uses.append((node.lineno, "read"))
        elif _is_os_environ(node):
            parent = parents.get(node)
            if isinstance(parent, ast.Subscript) and isinstance(parent.ctx, (ast.Store, ast.Del)):
                uses.append((node.lineno, "write"))
            elif isinstance(parent, ast.Attribute) and parent.attr in ("setdefault", "update", "pop") \
                    and isinstance(parents.get(parents.get(parent)), ast.Expr):
                uses.append((node.lineno, "write"))
            else:
                uses.append((node.lineno, "read"))
    return uses


def test_the_scanner_tells_reads_from_writes():
    source = ("import os\nfrom os import getenv\na = os.environ.get('X')\nos.environ['Y'] = '1'\n"
              "del os.environ['Y']\nos.environ.setdefault('Z', '1')\nb = os.getenv('W')\nc = os.environ['V']\n")
    assert sorted(environment_uses(source)) == [(2, "read"), (3, "read"), (4, "write"), (5, "write"),
                                                (6, "write"), (7, "read"), (8, "read")]

def test_only_env_py_reads_the_environment():
    reads = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative == "kernelarena/env.py":
            continue
        text = path.read_text()
        lines = [line for line, kind in environment_uses(text) if kind == "read"]
        if Path(relative).match(EMBEDDED_SOURCES):
            lines = [line for line in lines if EMBEDDED_MAY_READ not in text.splitlines()[line - 1]]
        if lines:
            reads[relative] = lines
    unexpected = {file: lines for file, lines in reads.items() if len(lines) > ALLOWED_READS.get(file, 0)}
    assert not unexpected, f"read the environment through kernelarena.env instead (file: lines): {unexpected}"


def test_every_variable_env_py_names_has_a_setting():
    constants = {value for name, value in vars(env).items() if name.isupper() and isinstance(value, str)}
    assert constants == {setting.name for setting in env.SETTINGS}
    assert len(env.SETTINGS) == len({setting.name for setting in env.SETTINGS})


def test_docs_list_every_variable():
    page = (ROOT / "docs" / "settings.md").read_text()
    assert env.settings_table() in page, "docs/settings.md is out of date: paste kernelarena.env.settings_table()"


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(env.CACHE_DIR, raising=False)
    monkeypatch.setenv(env.XDG_CACHE_HOME, str(tmp_path / "xdg"))
    assert env.cache_root() == tmp_path / "xdg" / "kernelarena"
    monkeypatch.setenv(env.CACHE_DIR, str(tmp_path / "mine"))
    assert env.cache_root() == tmp_path / "mine"
    monkeypatch.delenv(env.CACHE_DIR)
    monkeypatch.delenv(env.XDG_CACHE_HOME)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert env.cache_root() == tmp_path / "home" / ".cache" / "kernelarena"


def test_the_build_cache_uses_the_one_cache_root(monkeypatch, tmp_path):
    from kernelarena.build.cache import BuildCache
    from kernelarena.build.toolchain import default_cache_root

    monkeypatch.setenv(env.CACHE_DIR, str(tmp_path))
    assert default_cache_root() == env.cache_root() == BuildCache().root == tmp_path


@pytest.mark.parametrize("value, on", [(None, True), ("1", True), ("0", False), ("yes", True)])
def test_kernel_switches_are_on_unless_zero(monkeypatch, value, on):
    for name in (env.NATIVE_PLAN, env.SMALL_DECODE):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert env.native_plan_enabled() is on
    assert env.small_decode_enabled() is on


def test_apply_and_trace_settings(monkeypatch):
    for name in (env.APPLY, env.APPLY_WARMUP, env.TRACE, env.TRACE_POLICY):
        monkeypatch.delenv(name, raising=False)
    assert (env.apply_dataset(), env.apply_warmup(), env.trace_dataset(), env.trace_policy()) == (
        None, False, None, None)
    monkeypatch.setenv(env.APPLY, "/data/a")
    monkeypatch.setenv(env.APPLY_WARMUP, "1")
    monkeypatch.setenv(env.TRACE, "/data/t")
    monkeypatch.setenv(env.TRACE_POLICY, "")
    assert (env.apply_dataset(), env.apply_warmup(), env.trace_dataset(), env.trace_policy()) == (
        "/data/a", True, "/data/t", None)


def test_toolchain_settings(monkeypatch):
    monkeypatch.setenv(env.CUDA_HOME, "/opt/cuda")
    monkeypatch.delenv(env.CUDA_PATH, raising=False)
    monkeypatch.delenv(env.CXX, raising=False)
    assert env.cuda_homes() == ("/opt/cuda",)
    assert env.cxx() == "c++"
    monkeypatch.setenv(env.CXX, "clang++")
    assert env.cxx() == "clang++"
