"""airbench's optimisers: Nesterov SGD with its warm-up/warm-down schedule, Muon, the lab's Adam,
and lookahead.

``make_optimizer(recipe, model, ...)`` returns the optimiser and the per-step lr scheduler a
recipe trains with. ``orthogonalize`` is Muon's Newton-Schulz iteration; ``Lookahead`` keeps the
slow weights that the network is pulled back to every ``LOOKAHEAD_EVERY`` steps.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from labutils.speedrun.recipes import Recipe

# airbench94's Nesterov SGD. The lr and weight decay are "decoupled": each is given per 1024
# images and independent of the momentum, so each can be tuned alone (see make_sgd).
LR = 11.5  # per 1024 images, independent of the momentum
MOMENTUM = 0.85  # Nesterov momentum
WEIGHT_DECAY = 0.0153  # per 1024 images, independent of the learning rate
BIAS_SCALER = 64.0  # batch-norm biases take 64x larger steps (the same weight decay)
WARMUP_FRACTION = 0.23  # the lr rises over the first 23% of the steps ...
LR_START, LR_END = 0.2, 0.07  # ... from 0.2 to 1.0 x LR, then falls linearly to 0.07 x LR
WHITEN_BIAS_EPOCHS = 3  # the whitening layer's bias trains for 3 epochs, then freezes
LOOKAHEAD_EVERY = 5  # steps between lookahead updates
LOOKAHEAD_DECAY = 0.95**5  # the slow weights' share at the end of training (see lookahead_decay)

# airbench94_muon's: Muon for the conv filters, Nesterov SGD for the rest. airbench sums the
# loss over the batch; ours is the mean, so the SGD lrs are multiplied by the batch size (see
# make_muon). Muon's step does not depend on the gradient's scale.
MUON_LR = 0.24  # conv filters: the length of each (orthogonalised) step
MUON_MOMENTUM = 0.6  # Nesterov momentum of the filters
MUON_SGD_MOMENTUM = 0.85  # Nesterov momentum of the biases and the head
MUON_BIAS_LR = 0.053  # batch-norm and whitening biases, per image of the batch
MUON_HEAD_LR = 0.67  # the linear head, per image of the batch
MUON_WEIGHT_DECAY = 2e-6  # per image of the batch and step, on the biases and the head only
NEWTON_SCHULZ_STEPS = 3  # iterations that orthogonalise an update

# The lab's optimiser (Adam with the one-cycle schedule), for the ladder's rungs before Nesterov.
ADAM_MAX_LR = 0.01
ADAM_WEIGHT_DECAY = 1e-4


# --------------------------------------------------------------------------- Nesterov SGD


def lr_multiplier(step: int, total_steps: int) -> float:
    """airbench94's schedule: linear from 0.2 to 1.0 over 23% of the steps, then down to 0.07."""
    warmup_steps = int(total_steps * WARMUP_FRACTION)
    if step < warmup_steps:
        return LR_START + (1 - LR_START) * step / warmup_steps
    fraction = (step - warmup_steps) / (total_steps - warmup_steps)
    return 1 + (LR_END - 1) * fraction


def batchnorm_biases(model: nn.Module) -> list[nn.Parameter]:
    """The shift of every batch-norm layer."""
    return [module.bias for module in model.modules() if isinstance(module, nn.BatchNorm2d)]


def make_sgd(model: nn.Module, batch_size: int) -> torch.optim.SGD:
    """airbench94's Nesterov SGD, with its decoupled lr and weight decay made PyTorch's.

    Nesterov momentum m makes a step about 1 + 1/(1 - m) gradients long, so the lr is divided
    by that. Our loss is the batch mean where airbench sums it, so the lr is multiplied by the
    batch size. Batch-norm biases get a 64x larger lr, and the same decay per step.
    """
    kilostep_scale = 1024 * (1 + 1 / (1 - MOMENTUM))
    lr = LR / kilostep_scale * batch_size
    decay_per_step = WEIGHT_DECAY * batch_size / kilostep_scale  # PyTorch decays by lr * wd
    biases = batchnorm_biases(model)
    others = [
        parameter
        for parameter in model.parameters()
        if parameter.requires_grad and all(parameter is not bias for bias in biases)
    ]
    groups = [
        dict(params=biases, lr=lr * BIAS_SCALER, weight_decay=decay_per_step / (lr * BIAS_SCALER)),
        dict(params=others, lr=lr, weight_decay=decay_per_step / lr),
    ]
    return torch.optim.SGD(groups, lr=lr, momentum=MOMENTUM, nesterov=True)


# --------------------------------------------------------------------------- Muon


def orthogonalize(update: Tensor, steps: int = NEWTON_SCHULZ_STEPS, eps: float = 1e-7) -> Tensor:
    """Push every singular value of a 2-D ``update`` towards 1, keeping its singular vectors.

    A few Newton-Schulz iterations (an odd polynomial in the matrix, in bf16) do it without an
    SVD. The coefficients are airbench's, chosen to grow small singular values fast: the result
    has singular values roughly between 0.5 and 1.5, which trains as well as exactly 1.
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = update.bfloat16()
    x = x / (x.norm() + eps)  # every singular value now at most 1
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(update.dtype)


class Muon(torch.optim.Optimizer):
    """airbench94_muon's optimiser: Muon for the groups with ``orthogonalize``, SGD for the rest.

    Both use Nesterov momentum. In a Muon group each filter bank's update is orthogonalised
    (so rare directions learn as fast as common ones) and the weights are rescaled to a fixed
    norm before each step (the batch norm after them makes their scale irrelevant, and a fixed
    scale keeps the lr meaningful). The other groups take plain SGD steps with weight decay.
    """

    def __init__(self, groups: list[dict]) -> None:
        super().__init__(groups, dict(momentum=0.0, weight_decay=0.0, orthogonalize=False))

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                gradient = parameter.grad
                if not group["orthogonalize"]:
                    gradient = gradient.add(parameter, alpha=group["weight_decay"])
                state = self.state[parameter]
                momentum = state.setdefault("momentum_buffer", torch.zeros_like(parameter))
                momentum.mul_(group["momentum"]).add_(gradient)
                update = gradient.add(momentum, alpha=group["momentum"])  # Nesterov
                if group["orthogonalize"]:
                    parameter.mul_(len(parameter) ** 0.5 / parameter.norm())
                    update = orthogonalize(update.flatten(1)).view_as(parameter)
                parameter.add_(update, alpha=-group["lr"])


def make_muon(model: nn.Module, batch_size: int, total_steps: int, steps_per_epoch: int):
    """airbench94_muon's optimiser and schedule: every lr falls linearly to 0 over the run, the
    whitening bias's over its first ``WHITEN_BIAS_EPOCHS`` epochs (it is frozen after them)."""
    filters = [
        parameter
        for parameter in model.parameters()
        if parameter.ndim == 4 and parameter.requires_grad
    ]
    decay_per_step = MUON_WEIGHT_DECAY * batch_size  # airbench's, on a summed loss

    def sgd_group(params: list[nn.Parameter], lr: float) -> dict:
        # Our loss is the batch mean: a batch_size times larger lr takes airbench's step.
        return dict(
            params=params,
            lr=lr * batch_size,
            momentum=MUON_SGD_MOMENTUM,
            weight_decay=decay_per_step / (lr * batch_size),
        )

    groups = [
        sgd_group([model.whiten.bias], MUON_BIAS_LR),
        sgd_group(batchnorm_biases(model), MUON_BIAS_LR),
        sgd_group([model.head.weight], MUON_HEAD_LR),
        dict(params=filters, lr=MUON_LR, momentum=MUON_MOMENTUM, orthogonalize=True),
    ]
    optimizer = Muon(groups)
    whiten_bias_steps = math.ceil(WHITEN_BIAS_EPOCHS * steps_per_epoch)
    schedules = [lambda step: max(0.0, 1 - step / whiten_bias_steps)]
    schedules += [lambda step: 1 - step / total_steps] * 3
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedules)


# --------------------------------------------------------------------------- a recipe's optimiser


def make_optimizer(
    recipe: Recipe,
    model: nn.Module,
    batch_size: int,
    total_steps: int,
    steps_per_epoch: int | None = None,
):
    """The optimiser and its per-step lr scheduler for ``recipe``.

    Muon's schedule also needs ``steps_per_epoch``: the whitening bias trains for a number of
    epochs, not a share of the run.
    """
    if recipe.optimizer == "muon":
        if steps_per_epoch is None:
            raise ValueError(
                "make_optimizer needs steps_per_epoch for a Muon recipe: pass "
                "len(train_labels) // batch_size."
            )
        return make_muon(model, batch_size, total_steps, steps_per_epoch)
    if recipe.optimizer == "adam":  # the lab's: Adam with the one-cycle schedule
        trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=ADAM_MAX_LR, weight_decay=ADAM_WEIGHT_DECAY)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, ADAM_MAX_LR, total_steps=total_steps
        )
        return optimizer, scheduler
    optimizer = make_sgd(model, batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, total_steps)
    )
    return optimizer, scheduler


# --------------------------------------------------------------------------- lookahead


def lookahead_decay(step: int, total_steps: int) -> float:
    """The slow weights' share at ``step``: 0.95**5 * (step / total)**3, ~0 early, 0.77 last."""
    return LOOKAHEAD_DECAY * (step / total_steps) ** 3


class Lookahead:
    """A slow copy of the weights (and batch-norm statistics) that the network is pulled back to.

    Every few steps the slow copy moves part of the way towards the network, and the network
    jumps to it. Late in training this averages away the noise of the last SGD steps.
    """

    def __init__(self, model: nn.Module) -> None:
        self.slow = {
            name: value.detach().clone()
            for name, value in model.state_dict().items()
            if value.is_floating_point()
        }

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        """slow = decay * slow + (1 - decay) * network; then network = slow."""
        state = model.state_dict()
        for name, slow in self.slow.items():
            slow.lerp_(state[name], 1 - decay)
            state[name].copy_(slow)
