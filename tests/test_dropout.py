"""fnnet.nn.Dropout2d and F.dropout2d against torch 2.13 (and F.dropout's p = 1 case).

Masks come from JAX keys, so they cannot equal torch's draws; what is compared is everything else:
the scaling factor (bit for bit), whole channels dropped, the fraction dropped (binomial bounds), the
gradient, eval/p=0 identity, p=1 (NaN-propagating ``input * 0``), torch's warnings and errors for other
ranks, and per-example keys: one key per example gives that example's channel mask wherever the
example sits in the batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import fnnet.nn as fnn
import fnnet.nn.functional as F
from fnnet.nn.module import bind_example_keys


def channel_masks(out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Kept (True) / dropped (False) per (n, c), checking each channel is all kept or all dropped."""
    kept = out != 0
    flat = kept.reshape(*kept.shape[:2], -1)
    assert (flat.all(-1) | ~flat.any(-1)).all(), "a channel was partly dropped"
    return flat[..., 0]


def torch_scale(torch, p: float, dtype) -> np.ndarray:
    """torch's factor for kept values: what dropout2d turns a 1 into."""
    torch.manual_seed(0)
    out = torch.nn.functional.dropout2d(torch.ones(4000, 1, 1, 1, dtype=dtype), p).numpy().ravel()
    return out[out != 0][0]


@pytest.mark.parametrize("prec", ["float32", "float64"])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout2d_drops_whole_channels_at_rate_p_with_torchs_scale(p, prec, torch, request):
    if prec == "float64":
        request.getfixturevalue("x64")
    n, c = 300, 40
    x = np.random.default_rng(1).uniform(0.5, 1.5, (n, c, 3, 2)).astype(prec)
    out = np.asarray(F.dropout2d(x, p, key=jax.random.key(7)))
    kept = channel_masks(out, x)
    dropped = 1 - kept.mean()
    sigma = np.sqrt(p * (1 - p) / kept.size)
    assert abs(dropped - p) < 5 * sigma, (dropped, p)
    scale = torch_scale(torch, p, getattr(torch, prec))
    expected = (torch.from_numpy(x) * torch.tensor(scale)).numpy()
    np.testing.assert_array_equal(out[kept], expected[kept])  # bit for bit: torch multiplies by the same factor


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_dropout2d_gradient_is_the_scaled_mask(p, torch):
    x = np.random.default_rng(0).standard_normal((6, 5, 4, 4)).astype(np.float32)
    cot = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    key = jax.random.key(3)
    out, vjp = jax.vjp(lambda x: F.dropout2d(x, p, key=key), jnp.asarray(x))
    (grad,) = vjp(jnp.asarray(cot))
    kept = channel_masks(np.asarray(out), x)[:, :, None, None]
    scale = torch_scale(torch, p, torch.float32)
    np.testing.assert_array_equal(grad, np.where(kept, cot * scale, 0))
    # torch's own gradient has the same structure: cot * mask * scale
    t_x = torch.from_numpy(x).requires_grad_(True)
    t_out = torch.nn.functional.dropout2d(t_x, p)
    (t_out * torch.from_numpy(cot)).sum().backward()
    t_kept = channel_masks(t_out.detach().numpy(), x)[:, :, None, None]
    np.testing.assert_array_equal(t_x.grad.numpy(), np.where(t_kept, cot * scale, 0))


def test_dropout2d_per_example_keys_do_not_depend_on_the_batch():
    """One key per example: splitting the batch, or permuting it, gives each example the same mask."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((10, 6, 3, 3)).astype(np.float32))
    keys = jax.random.split(jax.random.key(42), 10)
    whole = np.asarray(F.dropout2d(x, 0.5, key=keys))
    halves = np.concatenate([F.dropout2d(x[:4], 0.5, key=keys[:4]), F.dropout2d(x[4:], 0.5, key=keys[4:])])
    np.testing.assert_array_equal(whole, halves)
    perm = rng.permutation(10)
    np.testing.assert_array_equal(np.asarray(F.dropout2d(x[perm], 0.5, key=keys[perm])), whole[perm])
    raw = np.asarray(F.dropout2d(x, 0.5, key=jax.random.key_data(keys)))  # (N, 2) uint32 keys
    np.testing.assert_array_equal(raw, whole)
    for b in range(10):  # example b's mask is the one its key draws alone
        np.testing.assert_array_equal(whole[b : b + 1], F.dropout2d(x[b : b + 1], 0.5, key=keys[b : b + 1]))
    channel_masks(whole, np.asarray(x))
    assert 0 < (whole == 0).mean() < 1
    with pytest.raises(ValueError, match="3 per-example keys given for an input of shape"):
        F.dropout2d(x, 0.5, key=keys[:3])


def test_dropout2d_layer_keys_like_dropout():
    """The layer draws from its own key and call count eagerly (two calls differ, the same seed repeats),
    and from one key per example once bind_example_keys gave them: then splitting the batch changes
    nothing."""
    x = jnp.asarray(np.random.default_rng(0).uniform(1, 2, (8, 16, 2, 2)).astype(np.float32))
    layer = fnn.Dropout2d(0.5, rngs=nnx.Rngs(dropout=5))
    first, second = np.asarray(layer(x)), np.asarray(layer(x))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(fnn.Dropout2d(0.5, rngs=nnx.Rngs(dropout=5))(x), first)
    keys = jax.random.split(jax.random.key(9), 8)

    def bound(rows):
        model = fnn.Sequential(fnn.Dropout(0.2), fnn.Dropout2d(0.5))
        bind_example_keys(model, keys[rows])
        return np.asarray(model(x[rows]))

    whole = bound(slice(0, 8))
    np.testing.assert_array_equal(np.concatenate([bound(slice(0, 3)), bound(slice(3, 8))]), whole)
    np.testing.assert_array_equal(bound(slice(0, 8)), whole)  # same keys, same masks
    assert (whole == 0).any() and (whole != 0).any()


def test_dropout2d_eval_p0_p1(torch):
    x = np.random.default_rng(0).standard_normal((3, 4, 2, 2)).astype(np.float32)
    layer = fnn.Dropout2d(0.5).eval()
    assert layer(x) is not None
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(F.dropout2d(x, 0.5, training=False), x)
    np.testing.assert_array_equal(F.dropout2d(x, 0.0, key=jax.random.key(0)), x)
    np.testing.assert_array_equal(fnn.Dropout2d(0.0)(x), x)
    special = np.array([[[[np.nan]], [[np.inf]], [[1.0]]]], np.float32)  # (1, 3, 1, 1)
    theirs = torch.nn.functional.dropout2d(torch.from_numpy(special), 1.0).numpy()
    np.testing.assert_array_equal(F.dropout2d(special, 1.0), theirs)  # input * 0: NaN where inf/NaN
    np.testing.assert_array_equal(fnn.Dropout2d(1.0)(special), theirs)
    np.testing.assert_array_equal(fnn.Dropout2d(1.0)(x), np.zeros_like(x))


def test_dropout_p1_propagates_nan_like_torch(torch):
    """F.dropout(p=1) is ``input * 0`` in torch (NaN for inf/NaN inputs); fnnet returned zeros before."""
    special = np.array([np.nan, np.inf, -np.inf, 2.0], np.float32)
    theirs = torch.nn.functional.dropout(torch.from_numpy(special), 1.0).numpy()
    np.testing.assert_array_equal(F.dropout(special, 1.0), theirs)
    np.testing.assert_array_equal(fnn.Dropout(1.0)(special), theirs)


def _warnings_of(fn: Callable) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("shape", [(4, 6, 5), (4, 6), (2, 3, 2, 2, 2), (5,)])
def test_dropout2d_other_ranks_warn_and_act_like_torch(shape, torch):
    """torch 2.13: a 3-D input is (N, C, L) (channel-wise 1-D dropout) with its warning; other ranks warn
    too and drop input[n, c] slices; 1-D raises in training."""
    x = np.random.default_rng(0).uniform(1, 2, shape).astype(np.float32)
    for training in (False, True) if len(shape) >= 2 else (False,):
        theirs = _warnings_of(lambda: torch.nn.functional.dropout2d(torch.from_numpy(x), 0.5, training=training))
        assert theirs
        ours = _warnings_of(lambda: F.dropout2d(x, 0.5, training=training, key=jax.random.key(1)))
        assert ours == theirs
    if len(shape) < 2:
        with pytest.raises(RuntimeError) as t_err:
            torch.nn.functional.dropout2d(torch.from_numpy(x), 0.5)
        with pytest.raises(ValueError) as err, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            F.dropout2d(x, 0.5, key=jax.random.key(1))
        assert str(err.value) == str(t_err.value)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = np.random.default_rng(1).uniform(1, 2, (50, *shape[1:])).astype(np.float32)
        out = np.asarray(F.dropout2d(big, 0.5, key=jax.random.key(1)))
    kept = channel_masks(out, big)
    assert kept.shape == (50, shape[1]) and 0 < kept.mean() < 1


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout2d_probability_errors_are_torchs(p, torch):
    with pytest.raises(ValueError) as theirs:
        torch.nn.Dropout2d(p)
    with pytest.raises(ValueError) as ours:
        fnn.Dropout2d(p)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError) as ours_f:
        F.dropout2d(np.ones((2, 2, 1, 1)), p)
    assert str(ours_f.value) == str(theirs.value)


def test_dropout2d_needs_a_key_in_training():
    with pytest.raises(ValueError, match="dropout2d in training mode needs key="):
        F.dropout2d(np.ones((2, 2, 1, 1)), 0.5)


@pytest.mark.parametrize("args", [(), (0.2,), (0.2, True)])
def test_dropout2d_repr_and_state(args, torch):
    ours, theirs = fnn.Dropout2d(*args), torch.nn.Dropout2d(*args)
    assert repr(ours) == repr(theirs)
    assert fnn.state_dict(ours) == {} and dict(theirs.state_dict()) == {}
    assert ours.training and not ours.eval().training


def test_dropout2d_under_jit_and_grad():
    """Inside jit (via nnx.split/merge) the layer draws from its key and advances its count."""
    layer = fnn.Dropout2d(0.5, rngs=3)
    graphdef, state = nnx.split(layer)

    @jax.jit
    def run(state, x):
        model = nnx.merge(graphdef, state)
        return model(x), nnx.state(model)

    x = jnp.ones((4, 8, 2, 2))
    a, state = run(state, x)
    b, state = run(state, x)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, fnn.Dropout2d(0.5, rngs=3)(x))  # eager draws the same first mask


# ---------------------------------------------------------------------------------------------- rosetta

ROSETTA_CASES: dict[str, Callable] = {}


def _rosetta_layer(torch, rng, prec):
    x = rng.uniform(1, 2, (64, 8, 3, 3)).astype(prec)
    layer = fnn.Dropout2d(0.25, rngs=0)
    out = np.asarray(layer(x))
    kept = channel_masks(out, x)
    scale = torch_scale(torch, 0.25, getattr(torch, prec))
    np.testing.assert_array_equal(out[kept], (torch.from_numpy(x) * torch.tensor(scale)).numpy()[kept])
    assert abs((1 - kept.mean()) - 0.25) < 5 * np.sqrt(0.25 * 0.75 / kept.size)
    np.testing.assert_array_equal(layer.eval()(x), torch.nn.Dropout2d(0.25).eval()(torch.from_numpy(x)).numpy())


def _rosetta_functional(torch, rng, prec):
    x = rng.uniform(1, 2, (16, 4, 2, 2)).astype(prec)
    keys = jax.random.split(jax.random.key(0), 16)
    out = np.asarray(F.dropout2d(x, 0.5, True, key=keys))
    kept = channel_masks(out, x)
    scale = torch_scale(torch, 0.5, getattr(torch, prec))
    np.testing.assert_array_equal(out[kept], (torch.from_numpy(x) * torch.tensor(scale)).numpy()[kept])
    theirs = torch.nn.functional.dropout2d(torch.from_numpy(x), 0.5, training=False).numpy()
    np.testing.assert_array_equal(F.dropout2d(x, 0.5, False), theirs)


ROSETTA_CASES["nn.Dropout2d(p)"] = _rosetta_layer
ROSETTA_CASES["F.dropout2d(x, p, training)"] = _rosetta_functional


@pytest.mark.parametrize("prec", ["float32", "float64"])
@pytest.mark.parametrize("spelling", sorted(ROSETTA_CASES))
def test_rosetta_row(spelling, prec, torch, rng, request):
    if prec == "float64":
        request.getfixturevalue("x64")
    ROSETTA_CASES[spelling](torch, rng, prec)
