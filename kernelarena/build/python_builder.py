"""Python solutions: the sources are imported as a package named after the cache key."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from ..errors import BuildError
from ..schema import Solution
from ..schema.solution import Language
from .builder import Builder
from .sources import entry_function, import_entry
from .toolchain import BuildTarget, package_version, python_version


class PythonBuilder(Builder):
    """Builds ``language: python``; runs on whatever device its torch code targets."""

    name = "python"
    language = Language.PYTHON

    def can_build(self, solution: Solution) -> bool:
        return solution.spec.language == self.language

    def toolchain(self, solution: Solution, target: BuildTarget) -> Dict[str, Optional[str]]:
        return {"python": python_version(), "torch": package_version("torch")}

    def compile(
        self, solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str
    ) -> str:
        # Compiling (without writing .pyc) finds syntax errors now, with file and line, for every file, not
        # only those the entry file happens to import first.
        for path in sorted(src_dir.rglob("*.py")):
            relative = path.relative_to(src_dir).as_posix()
            try:
                compile(path.read_text(), relative, "exec", dont_inherit=True)
            except SyntaxError as exc:
                raise BuildError(solution.name, f"syntax error in {relative}, line {exc.lineno}: {exc.msg}",
                                 log=_format_syntax_error(exc)) from exc
        return ""

    def load(
        self, solution: Solution, target: BuildTarget, src_dir: Path, out_dir: Path, module_name: str
    ) -> Callable[..., Any]:
        return entry_function(solution, import_entry(solution, src_dir, module_name))


def _format_syntax_error(exc: SyntaxError) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc))
