"""What kernelarena run prints: a reason per failure, the live bar, the closing table per solution."""

import io
import threading

from rich.console import Console

from kernelarena.bench.runner import RunReport
from kernelarena.report.run_view import RunProgress, solution_table, trace_line
from kernelarena.report.tables import one_line_reason
from kernelarena.schema import Definition, Environment, Evaluation, Solution, Status, Trace, Workload
from tests.apply.tiny_dataset import trace as passed_trace

TRACEBACK = """Traceback (most recent call last):
  File "main.py", line 3, in run
    raise ValueError("kernel exploded")
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
ValueError: kernel exploded
"""


def failed(solution: str, status: Status, log: str) -> Trace:
    return Trace(definition="scale_add", solution=solution, workload=Workload(uuid="w1", axes={"n": 3}, inputs={}),
                 evaluation=Evaluation(status=status, environment=Environment(hardware="cpu"),
                                       timestamp="2026-12-02T00:00:00+00:00", log=log))


def test_one_line_reason_finds_the_line_that_says_why():
    assert one_line_reason(TRACEBACK) == "ValueError: kernel exploded"
    assert one_line_reason("while timing:\n" + TRACEBACK) == "while timing: ValueError: kernel exploded"
    assert one_line_reason("timed out after 20 s (build included); worker killed.\n== x on w1\n") == \
        "timed out after 20 s (build included); worker killed."
    assert one_line_reason("") == "(no log)"
    assert len(one_line_reason("x" * 500, width=80)) == 80


def render(table_or_text) -> str:
    console = Console(file=io.StringIO(), width=300, force_terminal=False)
    console.print(table_or_text)
    return console.file.getvalue()


def test_trace_lines_and_closing_table_say_why_each_failure_failed():
    report = RunReport(traces=[passed_trace("fast", 8, 0.5), failed("bad", Status.RUNTIME_ERROR, TRACEBACK),
                               failed("bad", Status.RUNTIME_ERROR, TRACEBACK),
                               failed("bad", Status.TIMEOUT, "timed out after 3 s (build included); worker killed.")])
    assert "PASSED" in render(trace_line(report.traces[0])) and "500.0 us" in render(trace_line(report.traces[0]))
    assert "ValueError: kernel exploded" in render(trace_line(report.traces[1]))
    text = render(solution_table(report))
    assert "RUNTIME_ERROR x2: ValueError: kernel exploded" in text
    assert "TIMEOUT x1: timed out after 3 s" in text
    assert "4 traces" in text and "PASSED 1, RUNTIME_ERROR 2, TIMEOUT 1" in text


def test_progress_bar_shows_done_total_current_task_and_eta():
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, color_system=None)
    definition = Definition.model_validate({
        "name": "scale_add", "op_type": "elementwise", "axes": {"n": {"type": "var"}},
        "inputs": {"x": {"shape": ["n"], "dtype": "float32"}}, "outputs": {"y": {"shape": ["n"], "dtype": "float32"}},
        "reference": "def run(x):\n    return x\n"})
    solution = Solution.model_validate({
        "name": "honest", "definition": "scale_add", "author": "t",
        "spec": {"language": "python", "target_hardware": ["cpu"], "entry_point": "main.py::run"},
        "sources": [{"path": "main.py", "content": "def run(x, y):\n    y.copy_(x)\n"}]})
    with RunProgress(console, total=3) as progress:
        worker = threading.Thread(target=progress.started, args=(definition, solution, 3), name="serve-cpu")
        worker.start()
        worker.join()
        progress.finished(passed_trace("honest", 8, 0.5))
        progress.finished(failed("honest", Status.RUNTIME_ERROR, TRACEBACK))
    text = out.getvalue()
    assert "scale_add / honest" in text
    assert "2/3" in text and "0:00:0" in text  # done/total and elapsed; the ETA column follows "eta"
    assert "eta" in text
    assert "ValueError: kernel exploded" in text
