"""Exercises of the learning path (exercises/ in the repository): load one, grade a learner's answer.

``kernelarena exercise check PATH`` calls :func:`check_exercise` and prints :func:`grade_report`. This sits
on top of the library (bench, apply); only cli.py imports it.
"""

from .config import Exercise, ExerciseSolution, Routing, load_exercise
from .grader import Grade, WorkloadResult, check_exercise, grade_report
from .routing import RoutingResult

__all__ = ["Exercise", "ExerciseSolution", "Grade", "Routing", "RoutingResult", "WorkloadResult",
           "check_exercise", "grade_report", "load_exercise"]
