"""Rebuild the first tutorial's data layout from the Fashion-MNIST IDX files.

The tutorial (Analytics Vidhya's "Identify the Apparels") reads ``train.csv`` (``id,label``) and
``train/<id>.png``, ``test.csv`` (``id``) and ``test/<id>.png``. This writes exactly that from the
official IDX files (ids: train ``0..59999``, test ``60000..69999``), so ``load_fashion_mnist(DST)``
and the tutorial's own code both read it. A thin shell over ``fnnet.data.write_csv_png``.

    python experiments/make_csv_png.py --data-dir ../shared/data/fashion-mnist --out data/apparel
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fnnet.data import FashionMNIST, load_fashion_mnist, write_csv_png


def _limit(data: FashionMNIST, n: int | None) -> FashionMNIST:
    if n is None:
        return data
    return FashionMNIST(
        train_images=data.train_images[:n],
        train_labels=data.train_labels[:n],
        train_ids=data.train_ids[:n],
        test_images=data.test_images[:n],
        test_labels=None if data.test_labels is None else data.test_labels[:n],
        test_ids=data.test_ids[:n],
        source=data.source,
        is_sample=data.is_sample,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder with the four IDX files (default: FNNET_DATA_DIR, the user cache, download, sample)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/make_csv_png"),
        help="folder to write train.csv, train/, test.csv, test/ into",
    )
    p.add_argument(
        "--with-test-labels",
        action="store_true",
        help="give test.csv a label column (the tutorial's test.csv has none)",
    )
    p.add_argument(
        "--limit", type=int, default=None, metavar="N", help="write only the first N train and first N test images"
    )
    p.add_argument("--no-download", action="store_true", help="never download; fall back to the shipped sample")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive integer, got {args.limit}")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        data = _limit(load_fashion_mnist(args.data_dir, download=not args.no_download), args.limit)
        print(f"source: {data.source}")
        start = time.perf_counter()

        def progress(split: str, done: int, total: int) -> None:
            print(f"  {split}: {done:,}/{total:,} images written")

        write_csv_png(data, args.out, test_labels=args.with_test_labels, progress=progress)
        seconds = time.perf_counter() - start
        counts = np.bincount(data.train_labels, minlength=10).tolist()
        print(
            f"wrote {data.train_images.shape[0]:,} train and {data.test_images.shape[0]:,} test PNGs "
            f"to {args.out} in {seconds:.1f} s"
        )
        print(f"train.csv: id,label ({data.train_ids[0]}..{data.train_ids[-1]}); per-class counts {counts}")
        print(f"test.csv: {'id,label' if args.with_test_labels else 'id'} ({data.test_ids[0]}..{data.test_ids[-1]})")
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
