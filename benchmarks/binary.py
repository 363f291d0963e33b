"""Benchmark ``binary``: the fundamentals tutorial's 5-8-4-1 classifier, 200 full-batch epochs.

    python benchmarks/binary.py [--repeats 5] [--quick] [--impls fnnet,torch,torch-compile]

* fnnet: ``fnnet.smallnets.binary_train(model, X, y, epochs=200, lr=0.1)``: ``nn.BCELoss`` +
  ``optim.SGD`` full batch, every epoch in one ``lax.scan`` under one ``jit``.
* torch: the author's five-step loop ``optimizer.zero_grad(); output = model(X).view(-1);
  loss = criterion(output, y); loss.backward(); optimizer.step()``, the loss kept each epoch.
* torch-compile: the same loop with ``torch.compile(model)`` (forward and backward compiled by
  AOTAutograd/Inductor, the optimizer eager), compiled once for every call.

Data: the 100 rows of ``make_classification(100, 5, n_informative=3, random_state=101)`` as float32
(``fnnet.toy_data.load_binary_classification``). torch gets fnnet's initial weights
(``fnnet.nn.state_dict``), so both compute the same run; the final losses are compared.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

WORKLOAD = "binary"
LR = 0.1


def torch_network(torch):
    """The author's ``Network(5, 8, 4, 1)``."""
    nn = torch.nn

    class Network(nn.Module):
        def __init__(self, n_input=5, n_hidden1=8, n_hidden2=4, n_output=1):
            super().__init__()
            self.hidden1 = nn.Linear(n_input, n_hidden1)
            self.hidden2 = nn.Linear(n_hidden1, n_hidden2)
            self.relu = nn.ReLU()
            self.output = nn.Linear(n_hidden2, n_output)
            self.sigmoid = nn.Sigmoid()

        def forward(self, x):
            x = self.relu(self.hidden2(self.relu(self.hidden1(x))))
            return self.sigmoid(self.output(x))

    return Network()


def main(argv=None) -> int:
    args = h.parse(h.parser(__doc__.splitlines()[0]), argv)
    import jax
    import jax.numpy as jnp

    import fnnet
    from fnnet.smallnets import binary_init, binary_train
    from fnnet.toy_data import load_binary_classification

    epochs = 20 if args.quick else 200
    meter = h.CompileMeter()
    X_np, y_np = load_binary_classification()
    model0 = binary_init(jax.random.key(0))
    records = []
    final = {}
    if "fnnet" in args.impl_list:
        X, y = jnp.asarray(X_np), jnp.asarray(y_np)
        t = h.time_calls(
            lambda: binary_train(model0, X, y, epochs=epochs, lr=LR),
            repeats=args.repeats,
            finish=h.block,
            meter=meter,
            first_only=args.first_call_only or args.populate_cache,
        )
        final["fnnet"] = float(t["out"][1][-1])
        rec = h.record(WORKLOAD, "fnnet", h.jax_device(), t, args, epochs=epochs, result=final["fnnet"])
        records.append(rec)
        h.emit(args, rec)
    torch_impls = [i for i in args.impl_list if i.startswith("torch")]
    if torch_impls:
        import torch

        device, desc = h.torch_device(args.torch_threads)
        Xt, yt = torch.from_numpy(X_np).to(device), torch.from_numpy(y_np).to(device)
        state = {k: torch.from_numpy(v) for k, v in fnnet.nn.state_dict(model0).items()}
        criterion = torch.nn.BCELoss()

        def make_loop(model, compiled: bool):
            forward = torch.compile(model) if compiled else model  # compiled once, reused by every call

            def loop(model, optimizer):
                losses = torch.empty(epochs, device=device)
                for i in range(epochs):
                    optimizer.zero_grad()
                    output = forward(Xt).view(-1)
                    loss = criterion(output, yt)
                    loss.backward()
                    optimizer.step()
                    losses[i] = loss.detach()
                return losses

            return loop

        def finish(losses):
            h.torch_sync(device)
            return losses.cpu().numpy()

        for impl in torch_impls:
            model = torch_network(torch)
            model.load_state_dict(state)
            model.to(device)
            setup = h.torch_resetter(model, torch.optim.SGD(model.parameters(), lr=LR))
            t = h.time_calls(
                make_loop(model, impl == "torch-compile"), repeats=args.repeats, setup=setup, finish=finish
            )
            extra = {}
            if "fnnet" in final:
                extra["final_loss_rel_diff_vs_fnnet"] = float(abs(t["out"][-1] - final["fnnet"]) / final["fnnet"])
            rec = h.record(WORKLOAD, impl, desc, t, args, epochs=epochs, result=float(t["out"][-1]), **extra)
            records.append(rec)
            h.emit(args, rec)
    h.emit_ratios(args, WORKLOAD, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
