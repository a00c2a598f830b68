"""What the training loop relies on but does not teach.

checkpoints   what a run saves after each epoch, and how it resumes exactly
distributed   data-parallel training under torchrun: ranks, DDP, sums over the ranks
interrupts    Ctrl-C held back while the weights change, decided together by all ranks
timing        what a run will cost on this machine, measured on a few steps
"""
