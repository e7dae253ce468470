"""Workload: values for a definition's variable axes, and how each input is made."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Dict, Literal, Union

from pydantic import Field, field_validator

from .base import NonEmptyString, NonNegativeInt, Record


class RandomInput(Record):
    """Drawn at random (or by the definition's ``make_inputs``) for each correctness round."""

    type: Literal["random"] = "random"


class ScalarInput(Record):
    """A Python scalar passed as it is."""

    type: Literal["scalar"] = "scalar"
    value: Union[bool, int, float]


class SafetensorsInput(Record):
    """A tensor stored in the dataset: ``path`` is relative to the dataset root (under blob/)."""

    type: Literal["safetensors"] = "safetensors"
    path: NonEmptyString
    tensor_key: NonEmptyString

    @field_validator("path")
    @classmethod
    def _inside_dataset(cls, path: str) -> str:
        p = PurePosixPath(path.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or ":" in path.split("/")[0]:
            raise ValueError(f"safetensors path {path!r} must be relative to the dataset root, without '..'")
        return path


InputSpec = Annotated[Union[RandomInput, ScalarInput, SafetensorsInput], Field(discriminator="type")]


class Workload(Record):
    """One concrete problem for a definition."""

    uuid: NonEmptyString
    axes: Dict[NonEmptyString, NonNegativeInt]
    inputs: Dict[NonEmptyString, InputSpec] = Field(default_factory=dict)
