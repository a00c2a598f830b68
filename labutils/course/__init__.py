"""For instructors and batch runs: nothing here is part of a lesson.

profiles          the smoke, cpu and gpu settings, and which data each reads
runner            the whole series with papermill into one run folder, and its summary
budget            plans the series into N minutes on this machine
grading           nbgrader's cells: the student edition and the self-check
book              the static site (Sphinx) of an executed run: lessons, figures, docs/
install_cell      the notebooks' first cell: installs the lab outside the repository
jupyter_kernels   the kernel manager the runner and the self-check start notebooks with
cli               ``python -m labutils ...``: the command line over all of the above
"""
