"""Base model of every record, and field types shared by them."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def _check_safe_name(value: str) -> str:
    if not _SAFE_NAME.match(value) or value.endswith("."):
        raise ValueError(
            f"{value!r} is not a safe name: use letters, digits, '.', '_' and '-', starting with a letter "
            "or digit (names become file names)"
        )
    return value


NonEmptyString = Annotated[str, Field(min_length=1)]
SafeName = Annotated[str, AfterValidator(_check_safe_name)]
NonNegativeInt = Annotated[int, Field(ge=0)]


class Record(BaseModel):
    """Base of all FlashInfer-Trace records.

    Unknown fields are kept (``extra="allow"``) so that a record written by a newer FlashInfer-Bench, or one
    carrying another tool's additions, survives a load and a save unchanged. ``kernelarena validate`` lists
    them as warnings, since an unknown field is often a typo.
    """

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True, validate_assignment=False)

    def to_json_dict(self) -> dict:
        """The record as JSON-compatible data. Fields that are ``None`` are left out (every one of them is
        optional in FlashInfer-Trace), except ``shape``, where ``None`` means a Python scalar. NaN and
        infinities become the strings "NaN", "Infinity", "-Infinity", as FlashInfer-Bench writes them (strict
        JSON has no such numbers)."""
        return _prune_none(self.model_dump(mode="json"))

    def to_json(self, indent: int | None = None) -> str:
        """The record as a JSON string (one line when ``indent`` is None, as JSONL wants)."""
        return json.dumps(self.to_json_dict(), indent=indent, allow_nan=False)

    def unknown_fields(self, prefix: str = "") -> list[str]:
        """Dotted paths of fields that no model declares, in this record and its nested records."""
        found = [prefix + k for k in (self.model_extra or {})]
        for name in type(self).model_fields:
            value = getattr(self, name)
            children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
            for i, child in enumerate(children):
                if isinstance(child, Record):
                    key = list(value)[i] if isinstance(value, dict) else (i if isinstance(value, list) else None)
                    sub = f"{prefix}{name}" + (f".{key}" if key is not None else "") + "."
                    found += child.unknown_fields(sub)
        return found


def _prune_none(value):
    if isinstance(value, dict):
        return {k: _prune_none(v) for k, v in value.items() if v is not None or k == "shape"}
    if isinstance(value, list):
        return [_prune_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value
