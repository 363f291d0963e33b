"""The tutorial's validation split: ``train_test_split(x, y, test_size=0.1, stratify=y)``.

Re-implemented (sklearn's algorithm, same ``RandomState`` draws) so that scikit-learn is not a
runtime dependency; ``tests/test_data.py`` checks equality with sklearn index for index.
"""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_split"]


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Per-class counts for ``n_draws`` draws, ties broken by ``rng`` (sklearn's algorithm, so the
    same seed gives sklearn's split)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_split(
    images: np.ndarray, labels: np.ndarray, test_size: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train_x, val_x, train_y, val_y)``: a per-class proportional hold-out of ``test_size``.

    Mirrors ``sklearn.model_selection.train_test_split(images, labels, test_size=test_size,
    stratify=labels, random_state=seed)`` exactly (same algorithm and ``RandomState`` draws, so the
    same indices); re-implemented so scikit-learn is not a runtime dependency. The tutorial passes
    no seed; here the seed is required for reproducibility.
    """
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise ValueError(f"stratified_split: test_size must be a float in (0, 1), got {test_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"stratified_split: seed must be a non-negative int, got {seed!r}")
    images, labels = np.asarray(images), np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"stratified_split: labels must be 1-D, got shape {labels.shape}")
    n = labels.shape[0]
    if images.shape[0] != n:
        raise ValueError(f"stratified_split: {images.shape[0]} images but {n} labels")
    n_test = int(np.ceil(test_size * n))
    n_train = n - n_test
    classes, y_indices, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    if class_counts.min() < 2:
        raise ValueError(f"stratified_split: classes {classes[class_counts < 2].tolist()} have fewer than 2 members")
    if n_train < classes.size or n_test < classes.size:
        raise ValueError(
            f"stratified_split: {n_train} train / {n_test} held-out examples, each must be at least "
            f"the number of classes ({classes.size}); change test_size={test_size}"
        )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i in range(classes.size):
        perm = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(perm[: n_i[i]])
        test.extend(perm[n_i[i] : n_i[i] + t_i[i]])
    train_idx = rng.permutation(train)
    test_idx = rng.permutation(test)
    return images[train_idx], images[test_idx], labels[train_idx], labels[test_idx]
