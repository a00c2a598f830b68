"""What grading a class writes: grades.csv, one feedback file per student and notebook, the
executed notebooks, and a one-screen summary.

Feedback holds what a student may see: each exercise, its status, its message and points.
Messages never quote a hidden test (``results`` replaces them); the executed notebooks in
``graded/`` do hold the hidden tests, and are for the instructor only.
"""

from __future__ import annotations

import csv
from pathlib import Path

import nbformat

from labutils.course.results import check_points as points
from labutils.course.submissions import NotebookGrade

CSV_COLUMNS = ("student", "notebook", "exercise", "points", "max_points", "status", "message")


def write_grades_csv(grades: list[NotebookGrade], path: Path) -> Path:
    """One row per student, notebook and exercise; a written answer's points are left blank."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLUMNS)
        for grade in grades:
            for result in grade.results:
                earned = "" if result.kind == "written" else f"{result.earned:g}"
                writer.writerow(
                    [
                        grade.student,
                        grade.notebook,
                        result.grade_id,
                        earned,
                        f"{result.points:g}",
                        result.table_status,
                        result.message,
                    ]
                )
    return path


def _status_words(result) -> str:
    if result.kind == "written":
        return "graded by hand" + (" (no answer yet)" if result.status == "not attempted" else "")
    if result.changed:
        return f"{result.status} (your copy of this check was changed: the original was used)"
    return result.status


def feedback_markdown(grade: NotebookGrade) -> str:
    """The feedback a student reads for one notebook."""
    from labutils.course.runner import markdown_table

    earned, possible = points(grade.results)
    rows = []
    for result in grade.results:
        score = "by hand" if result.kind == "written" else f"{result.earned:g} / {result.points:g}"
        rows.append([result.grade_id, _status_words(result), score])
    lines = [
        f"# {grade.notebook}: feedback for {grade.student}",
        "",
        f"Automatic checks: **{earned:g} of {possible:g} points**.",
        "",
        markdown_table(["exercise", "status", "points"], rows),
    ]
    messages = [r for r in grade.results if r.message]
    if messages:
        lines += ["", "## What the checks said", ""]
        lines += [f"- **{r.grade_id}**: {r.message}" for r in messages]
    if grade.notes:
        lines += ["", "## About your notebook", ""] + [f"- {note}" for note in grade.notes]
    return "\n".join(lines) + "\n"


def write_feedback(grades: list[NotebookGrade], out: Path) -> None:
    """``out/feedback/<student>/<notebook>.md`` and ``out/graded/<student>/<notebook>``."""
    for grade in grades:
        stem = Path(grade.notebook).stem
        feedback = out / "feedback" / grade.student / f"{stem}.md"
        feedback.parent.mkdir(parents=True, exist_ok=True)
        feedback.write_text(feedback_markdown(grade), encoding="utf-8")
        if grade.executed is not None:
            graded = out / "graded" / grade.student / grade.notebook
            graded.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(grade.executed, graded)


def _student_lines(grades: list[NotebookGrade]) -> list[str]:
    """One line per student: points per notebook, the total, what awaits a person."""
    students = sorted({grade.student for grade in grades})
    width = max(len(student) for student in students) + 2
    lines = []
    for student in students:
        own = [grade for grade in grades if grade.student == student]
        parts = []
        for grade in own:
            earned, possible = points(grade.results)
            trouble = any(r.status in ("timed out", "error") for r in grade.results)
            flag = "!" if grade.error or grade.notes or trouble else ""
            parts.append(f"{Path(grade.notebook).stem} {earned:g}/{possible:g}{flag}")
        manual = sum(r.points for grade in own for r in grade.results if r.kind == "written")
        total = [sum(values) for values in zip(*(points(g.results) for g in own), strict=True)]
        lines.append(
            f"  {student:<{width}}{total[0]:>5g} of {total[1]:<5g} {'  '.join(parts)}"
            f"  (+ {manual:g} pt by hand)"
        )
    return lines


def _problem_lines(grades: list[NotebookGrade], strays: list[str]) -> list[str]:
    lines = []
    for grade in grades:
        where = f"{grade.student}/{grade.notebook}"
        if grade.error and grade.error != "not submitted":
            lines.append(f"  {where}: {grade.error}")
        lines += [f"  {where}: {note}" for note in grade.notes]
        lines += [
            f"  {where}: {r.grade_id} {r.status}: {r.message}"
            for r in grade.results
            if r.status in ("timed out", "error") and not grade.error
        ]
    lines += [f"  not graded (no notebook of the lab has this name): {stray}" for stray in strays]
    return lines


def _written_lines(grades: list[NotebookGrade]) -> list[str]:
    """Per student, the written answers to grade by hand; then who wrote none yet."""
    students = sorted({grade.student for grade in grades})
    lines, none_yet = [], []
    for student in students:
        answers = [
            f"{result.grade_id} ({result.points:g} pt)"
            for grade in grades
            if grade.student == student
            for result in grade.results
            if result.kind == "written" and result.status == "answered"
        ]
        if answers:
            lines.append(f"  {student}: {', '.join(answers)}")
        else:
            none_yet.append(student)
    if none_yet:
        lines.append(f"  no written answer yet: {', '.join(none_yet)}")
    return lines


def summary(grades: list[NotebookGrade], strays: list[str], header: str) -> str:
    """The one-screen summary printed after grading."""
    lines = [header, "", "Points of the automatic checks (! = see below):"]
    lines += _student_lines(grades)
    problems = _problem_lines(grades, strays)
    if problems:
        lines += ["", "To look at:"] + problems
    written = _written_lines(grades)
    if written:
        lines += ["", "Written answers to grade by hand (graded/<student>/<notebook>):"] + written
    return "\n".join(lines)
