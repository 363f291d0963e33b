"""The CNN benchmarks' shared parts: NCHW data, the torch twins, the plain-JAX twin, FLOP counts.

* torch: the same networks as ``experiments/apparel_recipes.py``'s ``TutorialCNN`` and ``StrongCNN``
  with torch's own layers, loaded with fnnet's initial weights (``fnnet.nn.state_dict``: torch keys).
* jax-plain: the same networks written the way a JAX user would without fnnet: ``flax.nnx.Conv``,
  ``nnx.BatchNorm`` and ``nnx.Linear`` on NHWC images (Flax's layout), trained with ``jax.grad`` of the
  whole network, i.e. XLA's own convolution and its gradient. Only the layers differ from fnnet's
  path (same optimizer transform, same scan), so it shows what fnnet's convolution lowering buys.
"""

from __future__ import annotations

import argparse
from typing import Any

import _apparel
import numpy as np

QUICK_TRAIN, QUICK_VAL = 2_048, 512


def load_splits(args: argparse.Namespace, recipe):
    """(splits, description): the recipe's inputs as torch's NCHW images, the tutorial's 90/10 split."""
    recipes = _apparel.recipes()
    return _apparel.load_splits(
        args,
        quick=(QUICK_TRAIN, QUICK_VAL),
        normalisation=recipes.input_normalisation(recipe),
        shape=recipes.input_shape(recipe),
    )


def torch_model(torch, kind: str, state: Any, device, dropout: float = 0.25):
    """The torch twin (``"cnn-tutorial"`` or ``"cnn"``) holding the weights of fnnet's ``state``."""
    from fnnet.nn import state_dict

    nn = torch.nn
    if kind == "cnn-tutorial":

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.cnn_layers = nn.Sequential(
                    nn.Conv2d(1, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
                    nn.Conv2d(4, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
                )  # fmt: skip
                self.linear_layers = nn.Sequential(nn.Linear(4 * 7 * 7, 10))

            def forward(self, x):
                x = self.cnn_layers(x)
                return self.linear_layers(x.view(x.size(0), -1))

    else:

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
                )  # fmt: skip
                self.classifier = nn.Sequential(
                    nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(dropout),
                    nn.Linear(128, 10),
                )  # fmt: skip

            def forward(self, x):
                return self.classifier(self.features(x))

    model = Net()
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state_dict(state.model()).items()})
    return model.to(device)


def plain_jax_model(kind: str, seed: int = 0, dropout: float = 0.25):
    """The same network in plain Flax NNX (NHWC, XLA's convolution); returns ``nnx.Module``."""
    from flax import nnx

    rngs = nnx.Rngs(seed)

    if kind == "cnn-tutorial":

        class Net(nnx.Module):
            def __init__(self):
                self.conv1 = nnx.Conv(1, 4, (3, 3), padding=1, rngs=rngs)
                self.bn1 = nnx.BatchNorm(4, momentum=0.9, rngs=rngs)
                self.conv2 = nnx.Conv(4, 4, (3, 3), padding=1, rngs=rngs)
                self.bn2 = nnx.BatchNorm(4, momentum=0.9, rngs=rngs)
                self.fc = nnx.Linear(4 * 7 * 7, 10, rngs=rngs)

            def __call__(self, x):
                x = nnx.max_pool(nnx.relu(self.bn1(self.conv1(x))), (2, 2), (2, 2))
                x = nnx.max_pool(nnx.relu(self.bn2(self.conv2(x))), (2, 2), (2, 2))
                return self.fc(x.reshape(x.shape[0], -1))

    else:

        class Net(nnx.Module):
            def __init__(self):
                self.conv1 = nnx.Conv(1, 32, (3, 3), padding=1, use_bias=False, rngs=rngs)
                self.bn1 = nnx.BatchNorm(32, momentum=0.9, rngs=rngs)
                self.conv2 = nnx.Conv(32, 64, (3, 3), padding=1, use_bias=False, rngs=rngs)
                self.bn2 = nnx.BatchNorm(64, momentum=0.9, rngs=rngs)
                self.drop = nnx.Dropout(dropout, rngs=rngs)
                self.fc1 = nnx.Linear(64 * 7 * 7, 128, rngs=rngs)
                self.fc2 = nnx.Linear(128, 10, rngs=rngs)

            def __call__(self, x):
                x = nnx.max_pool(nnx.relu(self.bn1(self.conv1(x))), (2, 2), (2, 2))
                x = nnx.max_pool(nnx.relu(self.bn2(self.conv2(x))), (2, 2), (2, 2))
                x = self.drop(x.reshape(x.shape[0], -1))
                return self.fc2(self.drop(nnx.relu(self.fc1(x))))

    return Net()


def plain_jax_step(loss_fn, tx):
    """The plain-JAX train step on ``(graphdef, state)`` carries: ``nnx.merge`` inside, ``jax.grad``."""
    import jax
    import optax
    from flax import nnx

    def step(carry, batch):
        graphdef, params, rest, opt_state = carry

        def objective(params):
            model = nnx.merge(graphdef, params, rest, copy=True)
            out = model(batch.x)
            return loss_fn(out, batch.y), nnx.state(model, nnx.Not(nnx.Param))

        (loss, rest), grads = jax.value_and_grad(objective, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (graphdef, optax.apply_updates(params, updates), rest, opt_state), loss

    return step


def conv_flops(batch: int, kind: str) -> dict[str, float]:
    """FLOPs (multiply-adds x 2) of one training step: forward, input and weight gradients.

    Conv layers: ``2 * B * H_out * W_out * C_out * C_in * k * k`` per pass; the first layer needs no
    input gradient. Linear layers likewise. BatchNorm, pooling and the optimizer are memory-bound
    and left out (they are small next to the products here).
    """
    if kind == "cnn-tutorial":
        convs = [(28, 4, 1), (14, 4, 4)]  # (spatial size, C_out, C_in), 3x3, padding 1
        linears = [(4 * 7 * 7, 10)]
    else:
        convs = [(28, 32, 1), (14, 64, 32)]
        linears = [(64 * 7 * 7, 128), (128, 10)]
    forward = [2 * batch * s * s * co * ci * 9 for s, co, ci in convs]
    dense = [2 * batch * a * b for a, b in linears]
    total = 3 * (sum(forward) + sum(dense)) - forward[0]  # no input gradient for the first layer
    return {"conv_forward_flop": float(sum(forward)), "step_flop": float(total)}
