"""Benchmark ``scratch``: the network from scratch, 5,000 epochs of hand-written backprop.

    python benchmarks/scratch.py [--repeats 5] [--quick] [--impls fnnet,torch,torch-compile]

* fnnet: ``fnnet.smallnets.scratch_train`` (``mode="corrected"``): all epochs in one ``lax.scan``
  under one ``jit``.
* torch: the article's loop with torch tensors (``torch.mm``, ``1 / (1 + torch.exp(-x))``, in-place
  ``+=`` updates), one Python iteration per epoch.
* torch-compile: the same epoch as a function of the four weight tensors, ``torch.compile``d
  (Inductor fuses the epoch's ~30 ops), still called once per epoch from Python.

All three start from the same initial weights (fnnet's ``scratch_init(key(0))``) and the last
epoch's outputs are compared (``max_abs_diff_vs_fnnet``).
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

WORKLOAD = "scratch"
LR = 0.1


def torch_loop(torch, X, y, w, epochs: int, lr: float):
    """The article's loop (corrected derivatives), as a torch user writes it."""
    wh, bh, wout, bout = (t.clone() for t in w)

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
        output = sigmoid(output_layer_input)
        E = y - output
        slope_output_layer = derivatives_sigmoid(output_layer_input)
        slope_hidden_layer = derivatives_sigmoid(hidden_layer_input)
        d_output = E * slope_output_layer
        Error_at_hidden_layer = torch.mm(d_output, wout.t())
        d_hiddenlayer = Error_at_hidden_layer * slope_hidden_layer
        wout += torch.mm(hidden_layer_activations.t(), d_output) * lr
        wh += torch.mm(X.t(), d_hiddenlayer) * lr
        bout += torch.sum(d_output, dim=0, keepdim=True) * lr
        bh += torch.sum(d_hiddenlayer, dim=0, keepdim=True) * lr
    return output


def torch_compiled_loop(torch):
    """A compiled epoch (functional updates, so Inductor can fuse it), called once per epoch."""

    def sigmoid(x):
        return 1 / (1 + torch.exp(-x))

    def derivatives_sigmoid(x):
        return sigmoid(x) * (1 - sigmoid(x))

    @torch.compile
    def epoch(X, y, wh, bh, wout, bout, lr: float):
        hidden_layer_input = torch.mm(X, wh) + bh
        hidden_layer_activations = sigmoid(hidden_layer_input)
        output_layer_input = torch.mm(hidden_layer_activations, wout) + bout
        output = sigmoid(output_layer_input)
        d_output = (y - output) * derivatives_sigmoid(output_layer_input)
        d_hiddenlayer = torch.mm(d_output, wout.t()) * derivatives_sigmoid(hidden_layer_input)
        wout = wout + torch.mm(hidden_layer_activations.t(), d_output) * lr
        wh = wh + torch.mm(X.t(), d_hiddenlayer) * lr
        bout = bout + torch.sum(d_output, dim=0, keepdim=True) * lr
        bh = bh + torch.sum(d_hiddenlayer, dim=0, keepdim=True) * lr
        return wh, bh, wout, bout, output

    def loop(X, y, w, epochs: int, lr: float):
        wh, bh, wout, bout = w
        for _ in range(epochs):
            wh, bh, wout, bout, output = epoch(X, y, wh, bh, wout, bout, lr)
        return output

    return loop


def main(argv=None) -> int:
    args = h.parse(h.parser(__doc__.splitlines()[0]), argv)
    import jax
    import numpy as np

    from fnnet.smallnets import scratch_data, scratch_init, scratch_train

    epochs = 500 if args.quick else 5000
    meter = h.CompileMeter()
    w0 = scratch_init(jax.random.key(0))
    records = []
    outputs = {}
    if "fnnet" in args.impl_list:
        t = h.time_calls(
            lambda: scratch_train(w0, epochs=epochs, lr=LR),
            repeats=args.repeats,
            finish=h.block,
            meter=meter,
            first_only=args.first_call_only or args.populate_cache,
        )
        outputs["fnnet"] = np.asarray(t["out"][1])
        rec = h.record(
            WORKLOAD,
            "fnnet",
            h.jax_device(),
            t,
            args,
            epochs=epochs,
            result=[round(float(v), 6) for v in outputs["fnnet"][:, 0]],
        )
        records.append(rec)
        h.emit(args, rec)
    torch_impls = [i for i in args.impl_list if i.startswith("torch")]
    if torch_impls:
        import torch

        device, desc = h.torch_device(args.torch_threads)
        X_np, y_np = (np.array(a) for a in scratch_data())  # writable copies
        X, y = torch.from_numpy(X_np).to(device), torch.from_numpy(y_np).to(device)
        w_np = [np.array(w0[k]) for k in ("wh", "bh", "wout", "bout")]

        def setup():
            return ([torch.from_numpy(a.copy()).to(device) for a in w_np],)

        def finish(out):
            return out.detach().cpu().numpy()

        for impl in torch_impls:
            loop = (
                (lambda w: torch_loop(torch, X, y, w, epochs, LR))
                if impl == "torch"
                else (lambda w, _loop=torch_compiled_loop(torch): _loop(X, y, w, epochs, LR))  # noqa: B008 - built once, here
            )
            t = h.time_calls(loop, repeats=args.repeats, setup=setup, finish=finish)
            extra = {}
            if "fnnet" in outputs:
                extra["max_abs_diff_vs_fnnet"] = float(np.max(np.abs(t["out"] - outputs["fnnet"])))
            rec = h.record(
                WORKLOAD,
                impl,
                desc,
                t,
                args,
                epochs=epochs,
                result=[round(float(v), 6) for v in t["out"][:, 0]],
                **extra,
            )
            records.append(rec)
            h.emit(args, rec)
    h.emit_ratios(args, WORKLOAD, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
