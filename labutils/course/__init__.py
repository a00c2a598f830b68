"""For instructors and batch runs: nothing here is part of a lesson.

profiles          the smoke, cpu and gpu settings, and which data each reads
runner            the whole series with papermill into one run folder, and its summary
budget            plans the series into N minutes on this machine
grading           nbgrader's cells and the student edition (with checks.json)
originals         puts the instructor's checks back into a submission, reports tampering
execution         runs a notebook to grade it: fresh kernel, a time limit per cell
sandbox           a submission's scratch folder, clean environment, limits, bubblewrap
submissions       grades one submitted notebook; the self-check
results           what each exercise earned, read from the executed cells
class_grading     ``grade``: a class at once; class_reports writes its csv, feedback, summary
gradescope        Gradescope's results.json and autograder bundle
book              the static site (Sphinx) of an executed run: lessons, figures, docs/
install_cell      the notebooks' first cell: installs the lab outside the repository
jupyter_kernels   the kernel manager the runner and the self-check start notebooks with
cli               ``python -m labutils ...``: the command line over all of the above
"""
