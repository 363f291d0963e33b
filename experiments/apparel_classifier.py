"""The apparel (Fashion-MNIST) classifier of the first tutorial, end to end, in JAX.

Variant followed: the authors' published code (DESIGN.md): images / 255 flattened to 784, a
stratified 10% validation split, ``Sequential(Linear(784, 500), ReLU(), Linear(500, 10))`` with torch's
``nn.Linear`` init, ``CrossEntropyLoss``. Three recipes:

* ``tutorial``: as published, 20 full-batch Adam(lr=0.0005) epochs with **no zero_grad**, so each
  step uses the sum of all gradients so far (what gives the tutorial's ~65%);
* ``tutorial-fixed``: the same with the gradients reset each step (~70%);
* ``strong`` (default): mini-batch AdamW, warmup + cosine schedule, label smoothing, dropout and
  shift/flip augmentation on the same MLP (>= 90% test accuracy on the full data).

Data: ``--data-dir``, else ``$FNNET_DATA_DIR``, else the user cache, else a download of the official
files, else the small genuine sample shipped with fnnet (with a notice). Everything is written
under ``--out``: metrics.json, loss.png, sample.png, confusion.png, predictions.png, submission.csv,
model.jaxexport + model.json, and checkpoints/ (one per epoch; ``--resume`` continues from it).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

import fnnet
from fnnet import parallel, reports

RECIPE_NAMES = tuple(fnnet.RECIPES)


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", choices=RECIPE_NAMES, default="strong")
    p.add_argument("--data-dir", default=None, help="IDX files or the tutorial's CSV+PNG layout")
    p.add_argument("--out", default="outputs/apparel_classifier", help="every output goes here")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the recipe's epochs")
    p.add_argument("--batch-size", type=positive_int, default=None, help="override the recipe's batch size")
    p.add_argument("--lr", type=positive_float, default=None, help="override the recipe's learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--no-download", action="store_true", help="never try to download the data set")
    p.add_argument("--no-compile-cache", action="store_true", help="turn off JAX's persistent compilation cache")
    p.add_argument("--compile-cache-dir", default=None, help="default: ~/.cache/fnnet/jax-cache")
    parallel.add_arguments(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun with --resume to continue from the last finished epoch", file=sys.stderr)
        return 130


def run(args) -> int:
    wall0 = time.perf_counter()
    ctx = parallel.setup(args)  # processes, devices, dtype; validates the parallel flags
    writer = ctx.process_index == 0
    log = print if writer else (lambda *a, **k: None)
    if not args.no_compile_cache:
        fnnet.enable_compilation_cache(args.compile_cache_dir)
    recipe = fnnet.RECIPES[args.recipe].with_overrides(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr)
    out = pathlib.Path(args.out)
    if not args.resume and (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise ValueError(
            f"{out / 'checkpoints'} already holds checkpoints: pass --resume to continue "
            f"that run, or choose another --out"
        )

    data = fnnet.load_fashion_mnist(args.data_dir, download=not args.no_download, verbose=writer)
    normalisation = fnnet.apparel.input_normalisation(recipe)
    splits = fnnet.prepare_splits(data, seed=args.seed, dtype=ctx.np_dtype, normalisation=normalisation)
    n_train = splits.train_x.shape[0]
    if recipe.batch_size is not None and recipe.batch_size > n_train:
        recipe = recipe.with_overrides(batch_size=n_train)
    log(
        f"data: {data.source}: {n_train} train / {splits.val_x.shape[0]} validation / "
        f"{splits.test_x.shape[0]} test images"
    )
    log(
        f"recipe {recipe.name}: {recipe.epochs} epochs, "
        f"{'full batch' if recipe.batch_size is None else f'batch {recipe.batch_size}'}, lr {recipe.lr}, "
        f"{ctx.describe()}"
    )

    state = fnnet.build_state(recipe, args.seed, n_train, dtype=ctx.jnp_dtype)
    epoch_fn, put_data, state = parallel.epoch_runner(ctx, recipe, state, n_train)
    run_config = {
        "recipe": recipe.name,
        "epochs": recipe.epochs,
        "batch_size": recipe.batch_size,
        "lr": recipe.lr,
        "seed": args.seed,
        "dtype": ctx.dtype_name,
        "n_train": int(n_train),
        "data_source": data.source,
    }
    checkpointer = fnnet.Checkpointer(out / "checkpoints") if writer or ctx.num_processes > 1 else None

    def on_epoch(row):
        log(
            f"epoch {row.epoch:3d}/{recipe.epochs}  train_loss {row.train_loss:.4f}  val_loss {row.val_loss:.4f}  "
            f"val_acc {row.val_accuracy:.4f}  {row.seconds:.2f}s",
            flush=True,
        )

    evaluator = fnnet.train.make_evaluator(state.apply_fn, fnnet.make_loss(recipe))  # one program for every split
    state, history = fnnet.fit(
        state,
        splits,
        recipe,
        seed=args.seed,
        checkpointer=checkpointer,
        resume=args.resume,
        run_config=run_config,
        on_epoch=on_epoch,
        epoch_fn=epoch_fn,
        put_data=put_data,
        evaluator=evaluator,
    )
    params = state.params
    if not writer:
        return 0
    write_outputs(
        out, data, splits, recipe, params, state.apply_fn, history, args, ctx, wall0, normalisation, evaluator
    )
    return 0


def write_outputs(
    out, data, splits, recipe, params, apply_fn, history, args, ctx, wall0, normalisation, evaluator
) -> None:
    train = evaluator(params, splits.train_x, splits.train_y)
    val = evaluator(params, splits.val_x, splits.val_y)
    test_pred = evaluator(params, splits.test_x)["predictions"]
    names = fnnet.CLASS_NAMES
    metrics = {
        "recipe": recipe.name,
        "seed": args.seed,
        "epochs": recipe.epochs,
        "batch_size": recipe.batch_size,
        "lr": recipe.lr,
        "dtype": ctx.dtype_name,
        "parallel": ctx.describe(),
        "data": {
            "source": data.source,
            "is_sample": bool(data.is_sample),
            "train": int(splits.train_x.shape[0]),
            "val": int(splits.val_x.shape[0]),
            "test": int(splits.test_x.shape[0]),
        },
        "train_accuracy": float(train["accuracy"]),
        "train_loss": float(train["loss"]),
        "val_accuracy": float(val["accuracy"]),
        "val_loss": float(val["loss"]),
    }
    if splits.test_y is not None:
        true = splits.test_y
        metrics["test_accuracy"] = float(np.mean(test_pred == true))
        per_class_true, per_class_pred = true, test_pred
        metrics["per_class_accuracy_split"] = "test"
    else:
        per_class_true, per_class_pred = splits.val_y, np.asarray(val["predictions"])
        metrics["per_class_accuracy_split"] = "validation"
    matrix = reports.confusion_matrix(per_class_true, per_class_pred, len(names))
    metrics["per_class_accuracy"] = {names[c]: float(matrix[c, c] / max(1, matrix[c].sum())) for c in range(len(names))}
    metrics["history"] = history

    reports.write_submission(out / "submission.csv", splits.test_ids, test_pred)
    fnnet.export_classifier(apply_fn, params, out, dtype=ctx.dtype_name, normalisation=normalisation)
    if reports.have_matplotlib():
        reports.plot_losses(out / "loss.png", history)
        pick = int(np.random.RandomState(128).choice(len(data.train_ids)))  # the tutorial's sample image
        reports.plot_sample(
            out / "sample.png",
            data.train_images[pick],
            f"id {int(data.train_ids[pick])}: {names[int(data.train_labels[pick])]}",
        )
        reports.plot_confusion(out / "confusion.png", matrix, names)
        show = np.random.RandomState(args.seed).choice(splits.test_x.shape[0], size=24, replace=False)
        reports.plot_predictions(
            out / "predictions.png",
            splits.test_x[show],
            test_pred[show],
            None if splits.test_y is None else splits.test_y[show],
            names,
        )
    else:
        print("matplotlib is not installed: figures skipped (pip install 'fnnet[plot]')")
    metrics["wall_time_s"] = time.perf_counter() - wall0
    reports.write_json(out / "metrics.json", metrics)
    test_part = f"  test_acc {metrics['test_accuracy']:.4f}" if "test_accuracy" in metrics else ""
    print(
        f"done: train_acc {metrics['train_accuracy']:.4f}  val_acc {metrics['val_accuracy']:.4f}{test_part}  "
        f"wall {metrics['wall_time_s']:.1f}s  outputs in {out}"
    )


if __name__ == "__main__":
    sys.exit(main())
