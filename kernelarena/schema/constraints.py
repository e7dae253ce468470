"""Safe evaluation of a definition's constraints: Python expressions over axis values.

Constraints such as ``"len_indptr == batch_size + 1"`` come from dataset files, which may be untrusted,
so they are never passed to ``eval``. An expression is parsed, checked against a whitelist of node types
(arithmetic, comparison, boolean logic, integer literals, axis names, and a few pure functions), and then
interpreted here.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Mapping

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.Pow: operator.pow, ast.Div: operator.truediv,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_FUNCTIONS = {"min": min, "max": max, "abs": abs, "ceil_div": lambda a, b: -(-a // b), "log2": math.log2}
_MAX_POW = 64


class ConstraintError(ValueError):
    """A constraint uses something outside the whitelist, or cannot be evaluated."""


def check_constraint(expression: str) -> ast.Expression:
    """Parse ``expression`` and reject any construct outside the whitelist; return the tree."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise ConstraintError(f"constraint {expression!r} is not a Python expression: {e.msg}") from e
    for node in ast.walk(tree):
        allowed = (
            isinstance(node, (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.Compare, ast.Name, ast.Load))
            or isinstance(node, (ast.BinOp, ast.UnaryOp))
            or type(node) in _BINARY or type(node) in _UNARY or type(node) in _COMPARE
            or (isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool)))
            or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
                and not node.keywords)
        )
        if not allowed:
            raise ConstraintError(
                f"constraint {expression!r} uses {type(node).__name__}, which is not allowed "
                "(only arithmetic, comparisons, and/or/not, numbers, axis names and min/max/abs/ceil_div/log2)"
            )
    return tree


def constraint_names(expression: str) -> set[str]:
    """Axis names that ``expression`` refers to (function names excluded)."""
    tree = check_constraint(expression)
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - called


def evaluate_constraint(expression: str, values: Mapping[str, Any]) -> bool:
    """Evaluate ``expression`` with axis ``values``; True when it holds."""
    tree = check_constraint(expression)
    return bool(_eval(tree.body, values, expression))


def _eval(node: ast.AST, values: Mapping[str, Any], expression: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise ConstraintError(f"constraint {expression!r} names unknown axis {node.id!r}")
        return values[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values, expression), _eval(node.right, values, expression)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_POW:
            raise ConstraintError(f"constraint {expression!r}: exponent {right} too large")
        try:
            return _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as e:
            raise ConstraintError(f"constraint {expression!r} divides by zero") from e
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values, expression))
    if isinstance(node, ast.BoolOp):
        results = (_eval(v, values, expression) for v in node.values)
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values, expression)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, values, expression)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](*(_eval(a, values, expression) for a in node.args))
    raise ConstraintError(f"constraint {expression!r}: cannot evaluate {type(node).__name__}")
