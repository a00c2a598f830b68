"""The speed track of notebook 05: airbench's recipe, rewritten for the lab and for CPUs.

recipes      which tricks each named recipe uses (``Recipe``, ``RECIPES``)
batches      the data as one tensor: whole-batch flips and shifts, test-time augmentation
network      the whitened, shift-only-batch-norm network
optimizers   Nesterov SGD with lookahead, and Muon
trainer      ``run_speedrun``: the recipe run end to end, and what a run will cost
"""
