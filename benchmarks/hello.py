"""Benchmark ``hello``: the hello-world 1-1-1 network, 1,000 SGD steps.

    python benchmarks/hello.py [--repeats 5] [--quick] [--impls fnnet,torch,torch-compile]

* fnnet: ``fnnet.smallnets.hello_train(hello_net(), steps=1000, lr=0.1)``: every
  ``value_and_grad`` + optax SGD step in one ``lax.scan`` under one ``jit``.
* torch: the author's loop ``net.zero_grad(); loss = nn.MSELoss()(net(x), target);
  loss.backward(); optimizer.step()`` with ``optim.SGD(lr=0.1)``, the loss kept each step.
* torch-compile: the same step as one ``torch.compile``d function (forward, backward and the
  optimizer step; Dynamo splits it at ``backward``), compiled once and called once per step (the
  module and optimizer objects are reused, so Dynamo's guards hold across calls).

Both start from the tutorial's weights (1.58, -0.14, 2.45, -0.11); the final losses are compared.
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _harness as h  # noqa: E402

WORKLOAD = "hello"
LR = 0.1
WEIGHTS = (1.58, -0.14, 2.45, -0.11)


def torch_net(torch):
    """The tutorial's ``Net`` with its hand-set weights."""
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden_layer = nn.Linear(1, 1)
            self.output_layer = nn.Linear(1, 1)
            with torch.no_grad():
                self.hidden_layer.weight.fill_(WEIGHTS[0])
                self.hidden_layer.bias.fill_(WEIGHTS[1])
                self.output_layer.weight.fill_(WEIGHTS[2])
                self.output_layer.bias.fill_(WEIGHTS[3])

        def forward(self, x):
            x = torch.sigmoid(self.hidden_layer(x))
            return torch.sigmoid(self.output_layer(x))

    return Net()


def main(argv=None) -> int:
    args = h.parse(h.parser(__doc__.splitlines()[0]), argv)

    from fnnet.smallnets import hello_net, hello_train

    steps = 100 if args.quick else 1000
    meter = h.CompileMeter()
    records = []
    final = {}
    if "fnnet" in args.impl_list:
        net0 = hello_net()
        t = h.time_calls(
            lambda: hello_train(net0, steps=steps, lr=LR),
            repeats=args.repeats,
            finish=h.block,
            meter=meter,
            first_only=args.first_call_only or args.populate_cache,
        )
        final["fnnet"] = float(t["out"][1][-1])
        rec = h.record(WORKLOAD, "fnnet", h.jax_device(), t, args, steps=steps, result=final["fnnet"])
        records.append(rec)
        h.emit(args, rec)
    torch_impls = [i for i in args.impl_list if i.startswith("torch")]
    if torch_impls:
        import torch

        device, desc = h.torch_device(args.torch_threads)
        x = torch.tensor([0.8], device=device)
        target = torch.tensor([1.0], device=device)
        criterion = torch.nn.MSELoss()

        def eager(net, optimizer):
            losses = torch.empty(steps, device=device)
            for i in range(steps):
                net.zero_grad()
                loss = criterion(net(x), target)
                loss.backward()
                optimizer.step()
                losses[i] = loss.detach()
            return losses

        def compiled():
            def step(net, optimizer):
                net.zero_grad()
                loss = criterion(net(x), target)
                loss.backward()
                optimizer.step()
                return loss.detach()

            step = torch.compile(step)

            def run(net, optimizer):
                losses = torch.empty(steps, device=device)
                for i in range(steps):
                    losses[i] = step(net, optimizer)
                return losses

            return run

        def finish(losses):
            h.torch_sync(device)
            return losses.cpu().numpy()

        for impl in torch_impls:
            net = torch_net(torch).to(device)
            setup = h.torch_resetter(net, torch.optim.SGD(net.parameters(), lr=LR))
            t = h.time_calls(eager if impl == "torch" else compiled(), repeats=args.repeats, setup=setup, finish=finish)
            extra = {}
            if "fnnet" in final:
                extra["final_loss_rel_diff_vs_fnnet"] = float(abs(t["out"][-1] - final["fnnet"]) / final["fnnet"])
            rec = h.record(WORKLOAD, impl, desc, t, args, steps=steps, result=float(t["out"][-1]), **extra)
            records.append(rec)
            h.emit(args, rec)
    h.emit_ratios(args, WORKLOAD, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
