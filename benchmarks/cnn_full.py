"""Benchmark ``cnn_full``: part II's CNN as published: 25 full-batch steps on 54,000 images.

    python benchmarks/cnn_full.py [--repeats 5] [--quick] [--data-dir DIR]
                                  [--impls fnnet,torch,torch-compile,jax-plain]

The ``cnn-tutorial`` recipe: Conv2d(1, 4, 3, 1, 1), BatchNorm2d, ReLU, MaxPool2d(2, 2), twice, then
Linear(4*7*7, 10); Adam(lr=0.07); each epoch ONE step with ``zero_grad``, in ``model.train()``: the
training forward, the validation forward on the 6,000 held-out images (BatchNorm in training mode),
both losses, backward of the training loss, the step.

* fnnet: the recipe's step (``experiments/apparel_recipes.published_cnn_step``) 25 times through
  ``fnnet.train.scan_batches`` in one ``jit``.
* torch: the published loop (torch's default threads); torch-compile: the model through ``torch.compile``.
* jax-plain: the same network in plain Flax NNX (``nnx.Conv`` on NHWC, XLA's convolution and gradient)
  with the same step structure, in the same scan.

Ratios: ``torch / fnnet`` (target >= 1) and ``jax-plain / fnnet`` (target >= 5).
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _apparel  # noqa: E402
import _cnn  # noqa: E402
import _harness as h  # noqa: E402
from cnn_mini import emit_cnn_ratios  # noqa: E402

WORKLOAD = "cnn_full"
EPOCHS = 25
IMPLS = ("fnnet", "torch", "torch-compile", "jax-plain")


def main(argv=None) -> int:
    p = h.parser(__doc__.splitlines()[0], data=True, impls=IMPLS, default_impls=("fnnet", "torch", "jax-plain"))
    p.add_argument(
        "--plain-steps",
        type=int,
        default=None,
        metavar="K",
        help=f"jax-plain runs only K of the {EPOCHS} steps (XLA's full-batch convolution is slow; ratios are per step)",
    )
    args = h.parse(p, argv)
    import jax
    import jax.numpy as jnp
    import numpy as np

    from fnnet.train import scan_batches

    recipes = _apparel.recipes()
    recipe = recipes.RECIPES["cnn-tutorial"]
    splits, info = _cnn.load_splits(args, recipe)
    n = info["n_train"]
    state0 = recipes.build_state(recipe, 0, n)
    x, y = jnp.asarray(splits.train_x), jnp.asarray(splits.train_y)
    vx, vy = jnp.asarray(splits.val_x), jnp.asarray(splits.val_y)
    meter = h.CompileMeter()
    records = []
    flops = _cnn.conv_flops(n, "cnn-tutorial")
    val_flop = _cnn.conv_flops(info["n_val"], "cnn-tutorial")["conv_forward_flop"]
    common = {
        "epochs": EPOCHS,
        "steps": EPOCHS,
        **info,
        "step_flop": flops["step_flop"] + val_flop,
        "run_flop": EPOCHS * (flops["step_flop"] + val_flop),
    }

    if "fnnet" in args.impl_list:
        step = recipes.make_step(recipe, val=(splits.val_x, splits.val_y))(None)
        run = jax.jit(lambda state: scan_batches(step, state, x, y, steps=EPOCHS))
        t = h.time_calls(
            lambda: run(state0),
            repeats=args.repeats,
            finish=h.block,
            meter=meter,
            first_only=args.first_call_only or args.populate_cache,
        )
        final = float(np.asarray(t["out"][1]["val_loss"])[-1])
        rec = h.record(WORKLOAD, "fnnet", h.jax_device(), t, args, variant="epoch", result=final, **common)
        records.append(rec)
        h.emit(args, rec)
    if "jax-plain" in args.impl_list:
        import optax
        from flax import nnx

        model = _cnn.plain_jax_model("cnn-tutorial")
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        tx = optax.adam(recipe.lr)  # the optimizer is not what is compared here; the layers are
        loss_fn = recipes.make_loss(recipe)
        xh, vxh = jnp.transpose(x, (0, 2, 3, 1)), jnp.transpose(vx, (0, 2, 3, 1))

        def plain_step(carry, batch):
            params, rest, opt_state = carry

            def objective(params):
                m = nnx.merge(graphdef, params, rest, copy=True)
                out = m(batch.x)
                out_val = m(vxh)  # training mode, as published
                return loss_fn(out, batch.y), (loss_fn(out_val, vy), nnx.state(m, nnx.Not(nnx.Param)))

            (loss, (val_loss, rest)), grads = jax.value_and_grad(objective, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), rest, opt_state), val_loss

        plain_steps = EPOCHS if args.plain_steps is None else max(1, min(EPOCHS, args.plain_steps))
        plain = jax.jit(lambda p, r, o: scan_batches(plain_step, (p, r, o), xh, y, steps=plain_steps))
        opt0 = tx.init(params)
        t = h.time_calls(lambda: plain(params, rest, opt0), repeats=args.repeats, finish=h.block)
        rec = h.record(WORKLOAD, "jax-plain", h.jax_device(), t, args, variant="epoch",
                       result=float(np.asarray(t["out"][1])[-1]),
                       **dict(common, steps=plain_steps, run_flop=plain_steps * common["step_flop"]))  # fmt: skip
        records.append(rec)
        h.emit(args, rec)

    torch_impls = [i for i in args.impl_list if i.startswith("torch")]
    if torch_impls:
        import torch

        device, desc = h.torch_device(args.torch_threads)
        tx_, ty_, tvx, tvy = _apparel.torch_tensors(torch, splits, device)
        for impl in torch_impls:
            model = _cnn.torch_model(torch, "cnn-tutorial", state0, device)
            optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
            criterion = torch.nn.CrossEntropyLoss()
            forward = torch.compile(model) if impl == "torch-compile" else model
            setup = h.torch_resetter(model, optimizer)

            def loop(model, optimizer, forward=forward, criterion=criterion):
                val_losses = []
                for _ in range(EPOCHS):
                    model.train()
                    optimizer.zero_grad()
                    out = forward(tx_)
                    out_val = forward(tvx)
                    loss = criterion(out, ty_)
                    val_losses.append(criterion(out_val, tvy).item())
                    loss.backward()
                    optimizer.step()
                return np.array(val_losses)

            t = h.time_calls(loop, repeats=args.repeats, setup=setup)
            rec = h.record(WORKLOAD, impl, desc, t, args, result=float(t["out"][-1]), **common)
            records.append(rec)
            h.emit(args, rec)
    emit_cnn_ratios(args, WORKLOAD, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
