"""labutils: the code behind the CIFAR-10 lab's notebooks.

Read it in this order, beside the notebook that uses it. The modules at the top are the
lessons' code; the subpackages hold what a student never needs to open.

The lessons (notebooks 01-04):
    data        the official files: a safe reader for the Python 2 pickles, the class names,
                mean and std, md5 checks, the ``CIFAR10`` dataset                        (01)
    synthetic   learnable stand-in images written in exactly the official format     (01, tests)
    download    fetching and verifying the official archive                              (01)
    sources     which data a run uses: the real files, or synthetic ones, said out loud (01-05)
    loaders     augmentation, normalisation, DataLoaders and whole-tensor loaders      (01-03)
    models      the MLP, the CNN and ResNet9                                            (02)
    train       ``fit_one_cycle``, ``train_one_epoch``, ``evaluate``, ``lr_range_test``  (03)
    runtime     the device, the precision and the memory format a run uses           (03, 04)
    plots       images, curves, confusion matrices                                   (01-05)
    runs        the run folder: what a training notebook writes, what 04 compares     (03, 04)
    exercises   the helpers behind the notebooks' graded exercises                   (01-05)
    checks      value checks whose errors say what to change                          (all)

Subpackages:
    engine      what the training loop relies on but does not teach: data-parallel training
                (torchrun), checkpoints and exact resume, step timing and cost estimates
    speedrun    the speed track of notebook 05: airbench's recipe for CPUs
    course      for instructors and batch runs: the series runner, the time budget, the
                profiles, the student edition and grading, the Jupyter kernels, the command line

Import modules by name, for example ``from labutils import data, models``. Importing the
package has no side effects: no seed is set, no file or network is touched.
"""

__version__ = "0.1.0"
