"""Safe evaluation of a definition's constraints: Python expressions over axis values and input tensors.

Constraints come from dataset files, which may be untrusted, so they are never passed to ``eval``. An
expression is parsed, checked against a whitelist, and interpreted here. Two kinds exist, as FlashInfer-Trace
writes them:

- over axes alone, e.g. ``"len_indptr == batch_size + 1"``: checked statically, from a workload's axis values;
- over inputs too, e.g. ``"num_kv_indices == kv_indptr[-1].item()"`` or ``"sparse_indices.shape[0] ==
  num_tokens"``: checked on the actual input tensors, once they exist.

Allowed: integer/float/bool/string literals, arithmetic, comparisons, and/or/not, names of axes and inputs,
indexing with integers and slices, the attributes ``shape`` and ``dtype``, the method ``.item()``, and the
functions in ``_FUNCTIONS``. Nothing else: no other attribute, no other call, no keyword argument.
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
_FUNCTIONS = {"min": min, "max": max, "abs": abs, "ceil_div": lambda a, b: -(-a // b), "log2": math.log2,
              "len": len, "int": int}
_ATTRIBUTES = {"shape", "dtype"}
_METHODS = {"item"}
_MAX_POW = 64
_MAX_BITS = 4096
_STRUCTURE = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.Compare, ast.Name, ast.Load, ast.BinOp,
              ast.UnaryOp, ast.Subscript, ast.Slice, ast.Tuple)


class ConstraintError(ValueError):
    """A constraint uses something outside the whitelist, or cannot be evaluated."""


def check_constraint(expression: str) -> ast.Expression:
    """Parse ``expression`` and reject any construct outside the whitelist; return the tree."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as e:
        raise ConstraintError(f"constraint {expression!r} is not a Python expression: {e.msg}") from e
    methods = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    for node in ast.walk(tree):
        allowed = (
            isinstance(node, _STRUCTURE)
            or type(node) in _BINARY or type(node) in _UNARY or type(node) in _COMPARE
            or (isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool, str)))
            or (isinstance(node, ast.Call) and not node.keywords and _allowed_callee(node))
            or (isinstance(node, ast.Attribute) and (node.attr in _ATTRIBUTES
                                                     or (node.attr in _METHODS and id(node) in methods)))
        )
        if not allowed:
            what = f"attribute .{node.attr}" if isinstance(node, ast.Attribute) else type(node).__name__
            raise ConstraintError(
                f"constraint {expression!r} uses {what}, which is not allowed (only arithmetic, comparisons, "
                "and/or/not, literals, axis and input names, indexing, .shape, .dtype, .item() and "
                f"{'/'.join(_FUNCTIONS)})"
            )
    return tree


def _allowed_callee(call: ast.Call) -> bool:
    if isinstance(call.func, ast.Name):
        return call.func.id in _FUNCTIONS
    return isinstance(call.func, ast.Attribute) and call.func.attr in _METHODS and not call.args


def constraint_names(expression: str) -> set[str]:
    """Names of axes and inputs that ``expression`` refers to (function names excluded)."""
    tree = check_constraint(expression)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def evaluate_constraint(expression: str, values: Mapping[str, Any]) -> bool:
    """Evaluate ``expression`` with ``values`` (axis sizes, and input tensors or scalars); True when it holds.

    Raises ConstraintError when the expression is not allowed, names something absent from ``values``, or
    fails on the values (an index out of range, a comparison of many elements at once).
    """
    tree = check_constraint(expression)
    try:
        return bool(_eval(tree.body, values, expression))
    except ConstraintError:
        raise
    except (AttributeError, IndexError, TypeError, ValueError, RuntimeError) as e:
        raise ConstraintError(f"constraint {expression!r} cannot be evaluated on these values: {e}") from e


def _eval(node: ast.AST, values: Mapping[str, Any], expression: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise ConstraintError(f"constraint {expression!r} names {node.id!r}, which has no value here")
        return values[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, values, expression), _eval(node.right, values, expression)
        for operand in (left, right):  # a string or shape tuple times a huge number would exhaust memory
            if isinstance(operand, (str, bytes, tuple, list)):
                raise ConstraintError(f"constraint {expression!r}: arithmetic on {type(operand).__name__}")
        if isinstance(node.op, (ast.Pow, ast.LShift)) and abs(right) > _MAX_POW:
            raise ConstraintError(f"constraint {expression!r}: exponent {right} too large")
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError as e:
            raise ConstraintError(f"constraint {expression!r} divides by zero") from e
        if isinstance(result, int) and result.bit_length() > _MAX_BITS:
            raise ConstraintError(f"constraint {expression!r}: a value too large")
        return result
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values, expression))
    if isinstance(node, ast.BoolOp):
        results = (_eval(v, values, expression) for v in node.values)
        return all(results) if isinstance(node.op, ast.And) else any(results)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values, expression)
        for op, comparator in zip(node.ops, node.comparators):
            right = _eval(comparator, values, expression)
            if not bool(_COMPARE[type(op)](left, right)):
                return False
            left = right
        return True
    if isinstance(node, ast.Subscript):
        return _eval(node.value, values, expression)[_index(node.slice, values, expression)]
    if isinstance(node, ast.Attribute):
        target = _eval(node.value, values, expression)
        if node.attr == "shape":
            return tuple(int(s) for s in target.shape)
        if node.attr == "dtype":  # compared with a FlashInfer-Trace dtype name, e.g. "bfloat16"
            return str(target.dtype).removeprefix("torch.")
        raise ConstraintError(f"constraint {expression!r}: .{node.attr} only as a call")
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):  # .item(): the only method
            return _eval(node.func.value, values, expression).item()
        return _FUNCTIONS[node.func.id](*(_eval(a, values, expression) for a in node.args))
    raise ConstraintError(f"constraint {expression!r}: cannot evaluate {type(node).__name__}")


def _index(node: ast.AST, values: Mapping[str, Any], expression: str) -> Any:
    if isinstance(node, ast.Slice):
        parts = [None if p is None else _integer(_eval(p, values, expression), expression)
                 for p in (node.lower, node.upper, node.step)]
        return slice(*parts)
    if isinstance(node, ast.Tuple):
        return tuple(_index(e, values, expression) for e in node.elts)
    return _integer(_eval(node, values, expression), expression)


def _integer(value: Any, expression: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConstraintError(f"constraint {expression!r}: an index must be an integer, not {value!r}")
    return value
