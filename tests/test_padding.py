"""fnnet.nn.functional.pad against live torch: every mode, 1-D/2-D/3-D pads, batched and unbatched inputs,
negative (cropping) widths; values and input gradients in float64 (exact: padding moves numbers, and a
gradient sums at most a few of them) and float32; torch's own op_db samples; torch's error messages."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnnet.nn.functional as F

# (input shape, pad, mode, value)
CASES = [
    ((2, 3, 5), (1, 2), "constant", None),
    ((2, 3, 5), (2, 0), "constant", 1.5),
    ((2, 3, 5, 4), (1, 1, 2, 0), "constant", -2.0),
    ((2, 3, 4, 5, 3), (1, 0, 0, 2, 1, 1), "constant", 0.5),
    ((3, 4), (1, 1, 1, 1), "constant", None),  # pads every dim of a 2-D input
    ((5,), (2, 3), "constant", 3.0),
    ((2, 3, 5, 4), (-1, 2, 0, -2), "constant", 1.0),  # negative widths crop
    ((2, 3, 5), (-2, -3), "constant", None),  # down to an empty last dim
    ((2, 3, 5), (1, 2), "reflect", None),
    ((3, 5), (4, 4), "reflect", None),  # unbatched, widths up to size - 1
    ((2, 3, 5, 4), (3, 1, 2, 4), "reflect", None),
    ((2, 3, 4, 5, 3), (1, 2, 2, 1, 3, 0), "reflect", None),
    ((3, 4, 5, 3), (1, 1, 2, 2, 1, 1), "reflect", None),  # unbatched 3-D
    ((2, 3, 5, 4), (-1, 2, 2, -1), "reflect", None),
    ((2, 3, 5), (1, 2), "replicate", None),
    ((2, 3, 5), (7, 6), "replicate", 0.0),  # widths beyond the size; value 0 is accepted
    ((2, 3, 5, 4), (3, 1, 2, 4), "replicate", None),
    ((2, 3, 4, 5, 3), (2, 0, 1, 3, 0, 2), "replicate", None),
    ((2, 3, 5, 4), (-2, 3, 4, -1), "replicate", None),
    ((2, 3, 5), (1, 2), "circular", None),
    ((3, 5), (5, 5), "circular", None),  # widths up to the size
    ((2, 3, 5, 4), (3, 1, 2, 4), "circular", None),
    ((2, 3, 4, 5, 3), (1, 2, 2, 1, 3, 0), "circular", None),
    ((2, 3, 5, 4), (-1, 2, 2, -3), "circular", None),  # torch crops first, then wraps the cropped core
]


def _pad_vjp(x, pad, mode, value, g):
    @jax.jit
    def run(x, g):
        y, vjp = jax.vjp(lambda x: F.pad(x, pad, mode=mode, value=value), x)
        return y, vjp(g)[0]

    return run(x, g)


def _compare(torch, x, pad, mode, value, dtype, rtol):
    import torch.nn.functional as tF

    xt = torch.tensor(x.astype(dtype), requires_grad=True)
    yt = tF.pad(xt, pad, mode=mode, value=value)
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.tensor(g))
    y, gx = _pad_vjp(jnp.asarray(x, dtype), pad, mode, value, jnp.asarray(g))
    assert y.dtype == dtype and y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=0)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("prec", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[2]}-{len(c[1]) // 2}d-{i}" for i, c in enumerate(CASES)])
def test_pad_against_torch(case, prec, torch, request):
    if prec == "float64":
        request.getfixturevalue("x64")
    shape, pad, mode, value = case
    x = np.random.default_rng(0).standard_normal(shape)
    # values are copies (exact); a gradient entry sums at most a handful of cotangents
    _compare(torch, x, pad, mode, value, np.dtype(prec), 1e-15 if prec == "float64" else 1e-6)


def test_pad_integer_input_casts_the_value(torch):
    import torch.nn.functional as tF

    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    y = F.pad(x, (1, 2), value=2.7)
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(y, tF.pad(torch.tensor(x), (1, 2), value=2.7).numpy())


def op_db_samples(torch) -> list[tuple]:
    from torch.testing._internal.common_methods_invocations import op_db

    samples = []
    for op in op_db:
        if op.name == "nn.functional.pad":
            for s in op.sample_inputs("cpu", torch.float64, requires_grad=False):
                args = list(s.args) + [None] * (3 - len(s.args))
                pad, mode, value = args[0], args[1] or s.kwargs.get("mode", "constant"), args[2]
                samples.append((op.variant_test_name, s.input.numpy(), tuple(pad), mode, s.kwargs.get("value", value)))
    return samples


def test_op_db_samples(torch, x64):
    samples = op_db_samples(torch)
    variants = {s[0] for s in samples}
    assert variants == {"constant", "reflect", "replicate", "replicate_negative", "circular"}
    for _, x, pad, mode, value in samples:
        _compare(torch, x, pad, mode, value, np.dtype("float64"), 1e-15)


# (input shape, pad, mode, value): each raises in torch, and fnnet raises with torch's message
ERRORS = [
    ((2, 3, 4), (1, 2, 3), "constant", None),
    ((2, 3), (1, 1, 1, 1, 1, 1), "constant", None),
    ((2, 3, 4), (-5, 0), "constant", None),
    ((2, 3, 4), (1, 1), "reflect", 1.0),
    ((2, 3, 4, 5), (1, 1), "reflect", None),
    ((4,), (1, 1), "replicate", None),
    ((2, 3, 4, 5, 6), (1, 1, 1, 1), "circular", None),
    ((2, 3, 4, 5, 6, 7), (1,) * 8, "reflect", None),
    ((2, 3, 4), (4, 0), "reflect", None),
    ((2, 3, 4, 5), (0, 0, 1, 5), "reflect", None),
    ((2, 3, 4), (-3, -1), "reflect", None),
    ((2, 3, 4), (-3, -1), "replicate", None),
    ((2, 0, 4), (1, 1), "reflect", None),
    ((2, 3, 0, 4), (1, 1, 1, 1), "replicate", None),
    ((2, 3, 4), (5, 0), "circular", None),
    ((2, 3, 4), (-3, -2), "circular", None),
]


@pytest.mark.parametrize("case", ERRORS, ids=[f"{c[2]}-{i}" for i, c in enumerate(ERRORS)])
def test_errors_carry_torch_messages(case, torch):
    import torch.nn.functional as tF

    shape, pad, mode, value = case
    x = np.zeros(shape, np.float32)
    with pytest.raises((RuntimeError, NotImplementedError)) as torch_error:
        tF.pad(torch.tensor(x), pad, mode=mode, value=value)
    with pytest.raises((ValueError, NotImplementedError)) as error:
        F.pad(x, pad, mode=mode, value=value)
    assert str(error.value) == str(torch_error.value).splitlines()[0]


def test_errors_where_fnnet_words_its_own(torch):
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="Unrecognised padding mode zeros"):  # torch: NotImplementedError
        F.pad(x, (1, 1), mode="zeros")
    with pytest.raises(TypeError, match="must be tuple of ints, but found element of type float at pos 0"):
        F.pad(x, (1.5, 1))
    with pytest.raises(ValueError, match=r"padding \(-5, 0\) at dimension 3 of input \[1, 2, 4, 4\] leaves -1"):
        F.pad(np.zeros((1, 2, 4, 4)), (-5, 0, 0, 0), mode="replicate")  # torch: an internal numel error
