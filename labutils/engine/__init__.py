"""What the training loop relies on but does not teach.

distributed   data-parallel training under torchrun: ranks, DDP, sums over the ranks
checkpoints   what a run saves after each epoch, and how it resumes exactly
"""
