"""labutils: the code behind the CIFAR-10 lab's notebooks.

Read it in this order, beside the notebook that uses it: the modules at the top are the
lessons' code.

The lessons (notebooks 01-04), each with the notebooks that use it:
    cifar_format  the official release: file names, md5 sums, classes, image layout    01
    data          the files read safely: a restricted reader for the Python 2 pickles,
                  md5 checks, the ``CIFAR10`` dataset                                   01
    synthetic     learnable stand-in images written in exactly the official format     01
    download      fetching and verifying the official archive                          01
    sources       which data a run uses, real or synthetic, said out loud           01-05
    loaders       augmentation, normalisation, DataLoaders and whole-tensor loaders  01-03
    models        the MLP, the CNN and ResNet9                                          02
    train         ``fit_one_cycle``, ``train_one_epoch``, ``evaluate``, lr range test   03
    runtime       the device, the precision and the memory layout a run uses        03-05
    plots         images, curves, confusion matrices                                01-05
    figures       every figure's look (palette, background), alt text, saving        01-05
    runs          the run folder: where it is, what 03 writes and 04 compares       01-05
    exercises     the helpers behind the notebooks' graded exercises               01-05
    checks        value checks whose errors say what to change                     01-05

Subpackages, which a student never needs to open:
    engine        what the training loop relies on but does not teach: data-parallel
                  training (torchrun), checkpoints and exact resume, Ctrl-C, timing
    speedrun      the speed track of notebook 05: airbench's recipe for CPUs
    course        for instructors and batch runs: the series runner, the time budget, the
                  profiles, the student edition and grading, the Jupyter kernels, the
                  command line (``python -m labutils``)

Import modules by name, for example ``from labutils import data, models``. Importing the
package has no side effects: no seed is set, no file or network is touched.
"""

__version__ = "0.1.0"
