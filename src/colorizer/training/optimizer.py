"""The optimizer `train` steps with: Adam, its learning-rate schedule, and a slower step for
fine-tuned pretrained layers (`train.backbone_lr_scale`).

Keras 3 has no per-variable learning rate. Scaling those variables' gradients would not do:
Adam's step is about lr x m / sqrt(v), the same for any scale of the gradient. So the step
itself is scaled, for the variables named when the optimizer is made.
"""

from __future__ import annotations

import keras


def make_optimizer(lr: float, schedule: str, total_steps: int, slow_variables=(), slow_scale: float = 1.0):
    """Adam at `lr` (cosine: a warm-up over the first 5% of steps, then decay to zero by the
    last), stepping `slow_variables` at `slow_scale` x the rate; loss-scaled under mixed_float16."""
    if schedule == "cosine":
        warmup = max(1, total_steps // 20)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total_steps - warmup), warmup_target=lr, warmup_steps=warmup
        )
    optimizer = ScaledAdam(lr, slow_variables, slow_scale)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)  # float16 gradients underflow otherwise
    return optimizer


class ScaledAdam(keras.optimizers.Adam):
    """Adam whose steps for `slow_variables` are `scale` x the others' (the same schedule, scaled)."""

    def __init__(self, learning_rate, slow_variables=(), scale: float = 1.0, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self._slow, self._scale, self._slow_indices = list(slow_variables), float(scale), frozenset()

    def build(self, variables):
        super().build(variables)
        self._slow_indices = frozenset(self._get_variable_index(v) for v in self._slow)

    def update_step(self, gradient, variable, learning_rate):
        if self._slow_indices and self._get_variable_index(variable) in self._slow_indices:
            learning_rate = learning_rate * self._scale
        super().update_step(gradient, variable, learning_rate)
