"""fnnet.smallnets' scratch network and experiments/scratch_network.py: both modes equal the same loop
in torch (float64), and the corrected mode is gradient descent (jax.grad) on half the squared error."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnnet import smallnets

EXPERIMENT = pathlib.Path(__file__).resolve().parent.parent / "experiments" / "scratch_network.py"


@pytest.fixture(scope="module")
def scratch():
    # Registered under a private name while loaded: dataclasses look their module up there.
    # The script imports its sibling ``reports`` as it does when run from experiments/.
    spec = importlib.util.spec_from_file_location("_experiment_scratch_network", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(EXPERIMENT.parent))
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(EXPERIMENT.parent))
        sys.modules.pop(spec.name, None)


def _torch_loop(torch, w, epochs, lr, mode):
    """The article's loop written with torch tensors, as in the authors' code (slips included)."""
    X = torch.tensor([[1, 0, 1, 0], [1, 0, 1, 1], [0, 1, 0, 1]], dtype=torch.float64)
    y = torch.tensor([[1], [1], [0]], dtype=torch.float64)
    wh, bh, wout, bout = (torch.from_numpy(np.array(w[k])) for k in ("wh", "bh", "wout", "bout"))

    def sigmoid(x):
        return 1 / (1 + torch.exp(-x))

    def derivatives_sigmoid(x):
        return sigmoid(x) * (1 - sigmoid(x))

    for _ in range(epochs):
        hidden_layer_input1 = torch.mm(X, wh)
        hidden_layer_input = hidden_layer_input1 + bh
        hidden_layer_activations = sigmoid(hidden_layer_input)
        output_layer_input1 = torch.mm(hidden_layer_activations, wout)
        output_layer_input = output_layer_input1 + bout
        if mode == "as-published":
            output = sigmoid(output_layer_input1)
            slope_output_layer = derivatives_sigmoid(output)
            slope_hidden_layer = derivatives_sigmoid(hidden_layer_activations)
        else:
            output = sigmoid(output_layer_input)
            slope_output_layer = derivatives_sigmoid(output_layer_input)
            slope_hidden_layer = derivatives_sigmoid(hidden_layer_input)
        E = y - output
        d_output = E * slope_output_layer
        Error_at_hidden_layer = torch.mm(d_output, wout.t())
        d_hiddenlayer = Error_at_hidden_layer * slope_hidden_layer
        wout += torch.mm(hidden_layer_activations.t(), d_output) * lr
        wh += torch.mm(X.t(), d_hiddenlayer) * lr
        if mode == "as-published":
            bout += d_output.sum() * lr
            bh += d_hiddenlayer.sum() * lr
        else:
            bout += torch.sum(d_output, dim=0, keepdim=True) * lr
            bh += torch.sum(d_hiddenlayer, dim=0, keepdim=True) * lr
    return {"wh": wh, "bh": bh, "wout": wout, "bout": bout}, output


@pytest.mark.parametrize("mode", ["corrected", "as-published"])
def test_each_mode_equals_torch_float64(torch, x64, mode):
    w0 = smallnets.scratch_init(jax.random.key(0), jnp.float64)
    w, output = smallnets.scratch_train(w0, epochs=5000, lr=0.1, mode=mode)  # the article's data
    tw, toutput = _torch_loop(torch, w0, 5000, 0.1, mode)
    assert output.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(output), toutput.numpy(), rtol=1e-10, atol=1e-10)
    for k in ("wh", "bh", "wout", "bout"):
        np.testing.assert_allclose(np.asarray(w[k]), tw[k].numpy(), rtol=1e-10, atol=1e-10, err_msg=k)


def test_modes_really_differ():
    X, y = smallnets.scratch_data()
    w0 = smallnets.scratch_init(jax.random.key(0))
    a = smallnets.scratch_train(w0, X, y, epochs=5000, lr=0.1, mode="corrected")[1]  # main's defaults
    b = smallnets.scratch_train(w0, X, y, epochs=5000, lr=0.1, mode="as-published")[1]
    assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-2


def test_corrected_step_is_a_jax_grad_step_of_half_the_squared_error(x64):
    X, y = smallnets.scratch_data(jnp.float64)
    w = smallnets.scratch_init(jax.random.key(1), jnp.float64)

    def loss(w):
        hidden = jax.nn.sigmoid(X @ w["wh"] + w["bh"])
        output = jax.nn.sigmoid(hidden @ w["wout"] + w["bout"])
        return 0.5 * jnp.sum((y - output) ** 2)

    gd_step = jax.jit(lambda w: jax.tree.map(lambda p, g: p - 0.1 * g, w, jax.grad(loss)(w)))
    step = jax.jit(lambda w: smallnets.scratch_step(w, X, y, 0.1, "corrected")[0])
    for _ in range(5):
        expected = gd_step(w)
        w = step(w)
        for k in w:
            np.testing.assert_allclose(np.asarray(w[k]), np.asarray(expected[k]), rtol=1e-12, atol=1e-12)


def test_default_run_prints_predictions_near_the_articles(scratch, tmp_path, capsys):
    assert scratch.main(["--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("predictions: ")
    preds = [float(v) for v in lines[-1].split()[1:]]
    assert all(len(v) == 4 for v in lines[-1].split()[1:])  # 2 decimals: "0.97"
    full = [float(v) for v in lines[-2].removeprefix("output: ").split()]
    np.testing.assert_allclose(preds, full, atol=0.005)
    # The article prints 0.98, 0.97, 0.03 after 5000 epochs; the default seed's draw reproduces them.
    assert lines[-1] == "predictions: 0.98 0.97 0.03"
    assert (tmp_path / "predictions.txt").read_text().splitlines() == lines


@pytest.mark.parametrize("argv,culprit", [(["--epochs", "0"], "--epochs"), (["--lr", "-1"], "--lr")])
def test_bad_flags_are_one_error_line(scratch, tmp_path, capsys, argv, culprit):
    assert scratch.main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and culprit in err[0]


@pytest.mark.parametrize(
    "kwargs,culprit",
    [({"epochs": 0}, "epochs"), ({"epochs": 10, "mode": "published"}, "mode"), ({"epochs": 2.5}, "epochs")],
)
def test_scratch_train_rejects_bad_arguments(kwargs, culprit):
    w0 = smallnets.scratch_init(jax.random.key(0))
    with pytest.raises(ValueError, match=culprit):
        smallnets.scratch_train(w0, **kwargs)


def test_scratch_train_compiles_once_for_any_lr(compile_count):
    w0 = smallnets.scratch_init(jax.random.key(0))
    smallnets.scratch_train(w0, epochs=7, lr=0.1)
    before = compile_count()
    smallnets.scratch_train(w0, epochs=7, lr=0.2)
    smallnets.scratch_train(w0, epochs=7, lr=0.3)
    assert compile_count() == before >= 1
