"""fnnet.nn.functional.ctc_loss and nn.CTCLoss against torch 2.13: values and log_probs gradients for
batched and unbatched inputs, padded and concatenated targets, lengths as arrays and sequences, every
reduction, zero_infinity, impossible alignments, empty inputs and targets, other blanks and
unnormalised log_probs, in float64 (1e-10) and float32 (1e-5 relative); torch's own op_db samples and
module_db inputs; torch's gradient formula itself; jit with traced lengths; errors.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _nn_compare import compare_module, module_db_inputs

import fnnet.nn as fnn
import fnnet.nn.functional as F

RTOL = {"float64": 1e-10, "float32": 1e-5}
DIFFS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_diffs():
    yield
    if os.environ.get("FNNET_NN_DIFFS"):
        for key, d in sorted(DIFFS.items()):
            print(f"\nctc_loss {key}: max diff / max|torch| {d:.3g}")


@pytest.fixture(params=["float64", "float32"])
def prec(request) -> str:
    if request.param == "float64":
        request.getfixturevalue("x64")
    return request.param


def assert_close(actual, expected, rtol: float, key: str = "") -> None:
    """Same shape, same NaN/inf positions, finite entries within ``rtol`` of the largest |expected|."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    finite = np.isfinite(expected)
    np.testing.assert_array_equal(actual[~finite], expected[~finite])
    scale = np.abs(expected[finite]).max(initial=0.0)
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=rtol, atol=rtol * scale)
    if key and finite.any():
        DIFFS[key] = max(
            DIFFS.get(key, 0.0), float(np.abs(actual[finite] - expected[finite]).max() / max(scale, 1e-300))
        )


def _log_softmax(a: np.ndarray) -> np.ndarray:
    a = a - a.max(axis=-1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=-1, keepdims=True))


# Most cases share (T, N, C, S) = (12, 4, 5, 4): the scans compile once per shape.
T, N, C, S = 12, 4, 5, 4
BASE = {"il": [12, 9, 7, 12], "tl": [4, 3, 1, 2]}
IMPOSSIBLE = [[1, 1, 2, 2], [1, 2, 3, 4], [3, 3, 0, 0], [1, 2, 0, 0]]
CASES = {
    "padded": {},
    "concatenated": {"concat": True},
    "lengths-lists": {"lengths": list},
    "lengths-tuples-concatenated": {"lengths": tuple, "concat": True},
    "repeats": {"targets": [[1, 1, 2, 2], [3, 3, 3, 1], [2, 2, 2, 2], [4, 1, 4, 1]], "il": [12, 6, 3, 5]},
    # (1, 1, 2, 2) needs 6 frames, (1, 2, 3, 4) 4, (3, 3) 3: the first three cannot be aligned
    "impossible": {"targets": IMPOSSIBLE, "il": [5, 3, 2, 12], "tl": [4, 4, 2, 2]},
    "impossible-zero-infinity": {"targets": IMPOSSIBLE, "il": [5, 3, 2, 12], "tl": [4, 4, 2, 2], "zero_infinity": True},
    "empty-inputs-and-targets": {"il": [0, 0, 5, 12], "tl": [0, 2, 0, 4]},
    "empty-zero-infinity": {"il": [0, 0, 5, 12], "tl": [0, 2, 0, 4], "zero_infinity": True},
    "blank-last": {"blank": C - 1},
    "blank-middle": {"blank": 2, "concat": True},
    "unnormalised": {"normalise": False},
    "unnormalised-zero-infinity": {"normalise": False, "il": [2, 9, 7, 12], "zero_infinity": True},
    "zero-probability-class": {"zero_class": 3},
    "garbage-padding": {"garbage": True},
    # targets holding the blank (torch does not refuse them; its backward overwrites at the last step)
    "blank-in-targets": {"targets": [[1, 0, 2, 0], [2, 1, 0, 3], [0, 0, 1, 2], [3, 0, 0, 0]], "tl": [4, 3, 2, 1]},
    "unbatched-concatenated": {"unbatched": True, "il": [9], "tl": [3]},
    "unbatched-padded-scalar-lengths": {"unbatched": True, "il": 12, "tl": 4, "padded_unbatched": True},
    # float32 gradient at 3e-5: exp(log Σαβ + nll - lp) cancels nll ~ 100 against log Σαβ ~ -100;
    # measured against float64, torch's own float32 gradient is off by 3.1e-5 of its largest entry
    # here (fnnet's by 3.0e-5; fnnet vs torch 7.9e-6)
    "long": {"shape": (50, 3, 6, 20), "il": [50, 41, 30], "tl": [20, 13, 7], "grad_rtol32": 3e-5},
}


def make_case(rng, cfg: dict):
    n_t, n, n_classes, s = cfg.get("shape", (T, N, C, S))
    blank = cfg.get("blank", 0)
    il, tl = cfg.get("il", BASE["il"][:n]), cfg.get("tl", BASE["tl"][:n])
    x = rng.standard_normal((n_t, n, n_classes)) * 2
    lp = _log_softmax(x) if cfg.get("normalise", True) else x
    if "zero_class" in cfg:
        lp[:, :, cfg["zero_class"]] = -np.inf
        lp = _log_softmax(lp)
    if "targets" in cfg:
        targets = np.asarray(cfg["targets"])
    else:
        avoid = {blank, cfg.get("zero_class", blank)}
        choices = np.asarray([c for c in range(n_classes) if c not in avoid])
        targets = choices[rng.integers(0, len(choices), (n, s))]
    tl_arr = np.atleast_1d(tl)
    if cfg.get("garbage"):
        pos = np.arange(s)[None] >= tl_arr[:, None]
        targets = np.where(pos, rng.choice([-1, 99, blank], (n, s)), targets)
    if cfg.get("concat"):
        targets = np.concatenate([targets[b, : tl_arr[b]] for b in range(n)])
    if cfg.get("unbatched"):
        lp = lp[:, 0]
        targets = targets[0, : tl_arr[0]] if not cfg.get("padded_unbatched") else targets[:1]
    return lp, targets, il, tl, blank


def _lengths(torch, value, kind, unbatched):
    if kind is list or kind is tuple:
        return kind(np.atleast_1d(value).tolist()), kind(np.atleast_1d(value).tolist())
    t = torch.tensor(value)
    return t, jnp.asarray(value)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_value_and_grad_match_torch(torch, rng, prec, name, reduction):
    cfg = CASES[name]
    lp, targets, il, tl, blank = make_case(rng, cfg)
    kind, zi = cfg.get("lengths"), cfg.get("zero_infinity", False)
    t_il, j_il = _lengths(torch, il, kind, cfg.get("unbatched"))
    t_tl, j_tl = _lengths(torch, tl, kind, cfg.get("unbatched"))
    t_lp = torch.from_numpy(lp.astype(prec)).requires_grad_(True)
    t_out = torch.nn.functional.ctc_loss(
        t_lp, torch.from_numpy(targets), t_il, t_tl, blank=blank, reduction=reduction, zero_infinity=zi
    )
    cot = rng.standard_normal(tuple(t_out.shape)).astype(prec)
    (t_out * torch.from_numpy(cot)).sum().backward()
    out, vjp = jax.vjp(
        lambda a: F.ctc_loss(a, jnp.asarray(targets), j_il, j_tl, blank=blank, reduction=reduction, zero_infinity=zi),
        jnp.asarray(lp.astype(prec)),
    )
    (grad,) = vjp(jnp.asarray(cot))
    assert out.dtype == jnp.dtype(prec)
    assert_close(out, t_out.detach().numpy(), RTOL[prec], f"value {prec}")
    grad_rtol = cfg.get("grad_rtol32", RTOL[prec]) if prec == "float32" else RTOL[prec]
    assert_close(grad, t_lp.grad.numpy(), grad_rtol, f"grad {prec}")


def test_impossible_alignment_gives_inf_and_nan_grads_like_torch(x64, torch, rng):
    lp, targets, il, tl, _ = make_case(rng, CASES["impossible"])
    t_lp = torch.from_numpy(lp).requires_grad_(True)
    t_out = torch.nn.functional.ctc_loss(t_lp, torch.from_numpy(targets), il, tl, reduction="none")
    t_out.sum().backward()
    out, vjp = jax.vjp(lambda a: F.ctc_loss(a, targets, il, tl, reduction="none"), jnp.asarray(lp))
    (grad,) = vjp(jnp.ones(4))
    np.testing.assert_array_equal(np.isinf(np.asarray(out)), [True, True, True, False])
    np.testing.assert_array_equal(np.isnan(np.asarray(grad)), np.isnan(t_lp.grad.numpy()))
    for b, length in enumerate(il):  # NaN for t < input_length, 0 after, for each impossible item
        if b < 3:
            assert np.isnan(np.asarray(grad)[:length, b]).all() and not np.asarray(grad)[length:, b].any()


def test_gradient_is_torchs_formula_not_the_loss_derivative(x64, torch, rng):
    """torch's gradient w.r.t. log_probs is the loss's derivative (central differences here) plus
    exp(log_probs) for t < input_length; the derivative sums to -1 over classes, so the extra term
    vanishes through log_softmax and the logits' gradient is the true one. fnnet returns torch's."""
    lp, targets, il, tl, _ = make_case(rng, CASES["padded"])
    t_lp = torch.from_numpy(lp).requires_grad_(True)
    torch.nn.functional.ctc_loss(t_lp, torch.from_numpy(targets), il, tl, reduction="sum").backward()
    valid = (np.arange(T)[:, None] < np.asarray(il)[None, :])[..., None]
    derivative = t_lp.grad.numpy() - np.exp(lp) * valid
    np.testing.assert_allclose(derivative.sum(axis=2), -1.0 * valid[..., 0], atol=1e-12)

    def loss(a):
        return F.ctc_loss(jnp.asarray(a), targets, il, tl, reduction="sum")

    h = 1e-6
    for t, b, c in zip(rng.integers(0, 7, 12), rng.integers(0, N, 12), rng.integers(0, C, 12)):
        step = np.zeros_like(lp)
        step[t, b, c] = h
        central = (float(loss(lp + step)) - float(loss(lp - step))) / (2 * h)
        assert central == pytest.approx(derivative[t, b, c], rel=1e-6, abs=1e-8)
    ours = jax.grad(loss)(jnp.asarray(lp))
    np.testing.assert_allclose(np.asarray(ours), t_lp.grad.numpy(), rtol=1e-10, atol=1e-13)
    assert np.abs(np.asarray(ours) - derivative).max() > 0.1
    x = rng.standard_normal(lp.shape)
    t_x = torch.from_numpy(x).requires_grad_(True)
    torch.nn.functional.ctc_loss(t_x.log_softmax(2), torch.from_numpy(targets), il, tl, reduction="sum").backward()
    via_softmax = jax.grad(lambda z: loss(jax.nn.log_softmax(z)))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(via_softmax), t_x.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_op_db_samples_match_torch(x64, torch, rng):
    from torch.testing._internal.common_methods_invocations import op_db

    (op,) = [o for o in op_db if o.name == "nn.functional.ctc_loss"]
    samples = list(op.sample_inputs("cpu", torch.float64, requires_grad=True))
    assert len(samples) >= 10
    for s in samples:
        targets, il, tl = s.args
        t_out = torch.nn.functional.ctc_loss(s.input, targets, il, tl, **s.kwargs)
        cot = rng.standard_normal(tuple(t_out.shape))
        (t_grad,) = torch.autograd.grad((t_out * torch.from_numpy(cot)).sum(), [s.input])
        conv = [np.asarray(v) if hasattr(v, "numpy") else v for v in (targets, il, tl)]
        out, vjp = jax.vjp(lambda a, conv=conv: F.ctc_loss(a, *conv, **s.kwargs), jnp.asarray(s.input.detach().numpy()))
        assert_close(out, t_out.detach().numpy(), 1e-10, "op_db float64")
        assert_close(vjp(jnp.asarray(cot))[0], t_grad.numpy(), 1e-10, "op_db float64")


def test_module_db_inputs_match_torch(x64, torch):
    cases = module_db_inputs("CTCLoss", torch, torch.float64)
    assert len(cases) >= 20
    for args, kwargs, forward, _ in cases:
        diff = compare_module(
            torch.nn.CTCLoss(*args, **kwargs),
            fnn.CTCLoss(*args, **kwargs),
            forward,
            torch=torch,
            rtol=1e-10,
            atol=1e-12,
            modes=(True,),
        )
        DIFFS["module_db float64"] = max(DIFFS.get("module_db float64", 0.0), diff.rel)


@pytest.mark.parametrize("kwargs", [{}, {"blank": 4, "reduction": "sum"}, {"reduction": "none", "zero_infinity": True}])
def test_module_matches_torch_module(x64, torch, rng, kwargs):
    cfg = dict(CASES["impossible-zero-infinity"], blank=kwargs.get("blank", 0))
    cfg.pop("targets")
    lp, targets, il, tl, _ = make_case(rng, cfg)
    theirs, ours = torch.nn.CTCLoss(**kwargs), fnn.CTCLoss(**kwargs)
    expected = theirs(torch.from_numpy(lp), torch.from_numpy(targets), il, tl).numpy()
    assert_close(ours(jnp.asarray(lp), jnp.asarray(targets), il, tl), expected, 1e-10)
    assert fnn.state_dict(ours) == {} and not theirs.state_dict()
    assert (ours.blank, ours.reduction, ours.zero_infinity) == (theirs.blank, theirs.reduction, theirs.zero_infinity)


def test_jit_with_traced_lengths_compiles_once(rng):
    lp, targets, il, tl, _ = make_case(rng, CASES["padded"])
    traces: list[int] = []

    @jax.jit
    def step(lp, targets, il, tl):
        traces.append(1)
        return jax.value_and_grad(lambda a: F.ctc_loss(a, targets, il, tl))(lp)

    for lengths in ([12, 9, 7, 12], [10, 12, 5, 8], [12, 12, 12, 12]):
        il_now = jnp.asarray(lengths, jnp.int32)
        value, grad = step(jnp.asarray(lp, jnp.float32), jnp.asarray(targets, jnp.int32), il_now, jnp.asarray(tl))
        eager, eager_grad = jax.value_and_grad(lambda a, il_now=il_now: F.ctc_loss(a, targets, il_now, tl))(
            jnp.asarray(lp, jnp.float32)
        )
        np.testing.assert_allclose(float(value), float(eager), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(grad), np.asarray(eager_grad), rtol=1e-5, atol=1e-7)
    assert len(traces) == 1


def test_jit_with_concatenated_targets_uses_the_total_length(x64, torch, rng):
    """Traced lengths: the padded width is the total target length (the longest is unknown)."""
    lp, targets, il, tl, _ = make_case(rng, CASES["concatenated"])
    expected = torch.nn.functional.ctc_loss(torch.from_numpy(lp), torch.from_numpy(targets), il, tl, reduction="none")
    actual = jax.jit(lambda *a: F.ctc_loss(*a, reduction="none"))(
        jnp.asarray(lp), jnp.asarray(targets), jnp.asarray(il), jnp.asarray(tl)
    )
    assert_close(actual, expected.numpy(), 1e-10)


def _f32(*shape):
    return jnp.zeros(shape, jnp.float32)


def _i32(*values):
    return jnp.asarray(values, jnp.int32)


TARGETS = jnp.ones((2, 3), jnp.int32)
ERRORS = [
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [5, 5], [3, 3], blank=4), "blank must be in label range"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [5, 5], [3, 3], blank=-1), "blank must be in label range"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [5, 5], [3, 3], reduction="avg"), "avg is not a valid value"),
    (lambda: F.ctc_loss(_f32(5, 4), TARGETS, [5, 5], [3, 3]), r"input_lengths must be of size batch_size \(1\)"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [5], [3, 3]), "input_lengths must be of size batch_size"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [5, 5], [3, 3, 3]), "target_lengths must be of size batch_size"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [5.0, 5.0], [3, 3]), "input_lengths must be integral"),
    (
        lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [6, 5], [3, 3]),
        "input_lengths to have value at most 5, but got value 6",
    ),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [-1, 5], [3, 3]), "input_lengths to have value at least 0"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [5, 5], [3, -1]), "target_lengths to have value at least 0"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS, [5, 5], [4, 3]), "size at least 4 at dimension 1, but got size 3"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), jnp.ones((3, 3), jnp.int32), [5, 5], [3, 3]), "size 2 at dimension 0"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), _i32(1, 2, 3), [5, 5], [2, 2]), "size 4 at dimension 0, but got size 3"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS * 1.0, [5, 5], [3, 3]), "integer class indices"),
    (lambda: F.ctc_loss(_f32(5, 2, 4), TARGETS * 4, [5, 5], [3, 3]), "target 4 is out of bounds for 4 classes"),
    (lambda: F.ctc_loss(_f32(5), TARGETS, [5], [3]), r"shape \(T, N, C\) or \(T, C\)"),
    (lambda: F.ctc_loss(jnp.zeros((5, 2, 4), jnp.int32), TARGETS, [5, 5], [3, 3]), "floating-point"),
]


@pytest.mark.parametrize("call,message", ERRORS, ids=[f"error{i}" for i in range(len(ERRORS))])
def test_invalid_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_padding_beyond_target_lengths_is_ignored_like_torch(x64, torch, rng):
    """torch reads targets only up to each length: out-of-range padding is no error in either."""
    lp, targets, il, tl, _ = make_case(rng, CASES["garbage-padding"])
    assert (targets < 0).any() or (targets >= C).any()
    expected = torch.nn.functional.ctc_loss(torch.from_numpy(lp), torch.from_numpy(targets), il, tl)
    assert_close(F.ctc_loss(jnp.asarray(lp), jnp.asarray(targets), il, tl), expected.numpy(), 1e-10)
