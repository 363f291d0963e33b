"""fnnet.data: IDX and CSV+PNG loaders, every bad input, MD5-verified download, sample, split.

References: the official files in ../shared (their MD5s are Zalando's published ones), Pillow as
the PNG decoder, scikit-learn's ``train_test_split`` for the split, hand-built IDX headers.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fnnet import data as fd
from fnnet._csv_png import decode_pngs
from fnnet.data import DataError

OFFICIAL = {  # published by Zalando (github zalandoresearch/fashion-mnist README)
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Never touch the real ~/.cache or a user's FNNET_* settings."""
    for var in ("FNNET_DATA_DIR", "FNNET_DOWNLOAD_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


@pytest.fixture(scope="module")
def sample() -> fd.FashionMNIST:
    return fd.load_idx_dir(fd.sample_dir())


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _idx(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file built by hand with struct (independent of fnnet.write_idx)."""
    return struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + payload


# ------------------------------------------------------------------------------------------- IDX


def test_class_names_are_zalandos():
    assert fd.CLASS_NAMES == (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )


@pytest.mark.parametrize(
    "dtype,code", [("u1", 0x08), ("i1", 0x09), ("i2", 0x0B), ("i4", 0x0C), ("f4", 0x0D), ("f8", 0x0E)]
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_matches_hand_built_file(tmp_path, rng, dtype, code, gz):
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    raw = _idx(code, array.shape, array.astype(">" + dtype).tobytes())
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    got = fd.read_idx(path)
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, array)
    out = tmp_path / ("y.gz" if gz else "y")
    fd.write_idx(out, array)  # write_idx produces the same bytes as the hand-built file
    assert (gzip.decompress(out.read_bytes()) if gz else out.read_bytes()) == raw


def test_official_files_read(shared_fmnist):
    data = fd.load_idx_dir(shared_fmnist)
    assert data.train_images.shape == (60000, 28, 28) and data.train_images.dtype == np.uint8
    assert data.test_images.shape == (10000, 28, 28)
    assert data.train_labels.dtype == np.int32 and data.train_ids.dtype == np.int64
    # Published: 6,000 train and 1,000 test images per class.
    assert np.bincount(data.train_labels).tolist() == [6000] * 10
    assert np.bincount(data.test_labels).tolist() == [1000] * 10
    assert data.train_ids.tolist() == list(range(60000))
    assert data.test_ids.tolist() == list(range(60000, 70000))
    assert data.source == f"IDX files in {shared_fmnist}" and not data.is_sample
    # the tutorial divides by train_x.max(): that is 255 here, as to_features assumes
    assert int(data.train_images.max()) == 255 and int(data.test_images.max()) == 255


def _good_labels() -> bytes:
    return _idx(0x08, (4,), bytes([0, 1, 2, 9]))


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("missing.idx", None, "file not found"),
        ("short.idx", b"\x00\x00", "too short"),
        ("magic.idx", b"\x00\x01\x08\x01" + struct.pack(">I", 1) + b"\x00", "wrong IDX magic 0x00010801"),
        ("type.idx", b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "wrong IDX magic 0x00000701"),
        ("nodims.idx", b"\x00\x00\x08\x00", "wrong IDX magic 0x00000800"),
        ("header.idx", b"\x00\x00\x08\x03" + struct.pack(">I", 5), "header truncated"),
        (
            "payload.idx",
            _idx(0x08, (2, 28, 28), bytes(1000)),
            r"truncated: dimensions \(2, 28, 28\) need 1568 bytes .* found 1000",
        ),
        ("trailing.idx", _idx(0x08, (4,), bytes(5)), "trailing bytes"),
        ("notgz.gz", _idx(0x08, (4,), bytes(4)), "named .gz but is not gzip"),
        ("cut.gz", gzip.compress(_idx(0x08, (4000,), bytes(range(250)) * 16))[:-20], "truncated gzip"),
        ("crc.gz", gzip.compress(_good_labels())[:-8] + b"\x00\x00\x00\x00" + struct.pack("<I", 12), "corrupt gzip"),
    ],
)
def test_read_idx_bad_input(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        fd.read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_corrupt_deflate_stream(tmp_path):
    blob = bytearray(gzip.compress(_idx(0x08, (2, 28, 28), np.arange(1568, dtype=np.uint8).tobytes())))
    blob[20] ^= 0xFF  # inside the deflate data
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"bad\.gz: (corrupt|truncated) gzip"):
        fd.read_idx(path)


def _write_idx_dir(folder: Path, train_x, train_y, test_x, test_y, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in zip(fd.IDX_FILES.values(), (train_x, train_y, test_x, test_y)):
        fd.write_idx(folder / (name if gz else name.removesuffix(".gz")), arr, compresslevel=1)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_dir_gz_and_raw(tmp_path, sample, gz):
    x, y = sample.train_images[:50], sample.train_labels[:50].astype(np.uint8)
    folder = _write_idx_dir(tmp_path / "d", x, y, x[:20], y[:20], gz=gz)
    got = fd.load_fashion_mnist(folder, download=False, verbose=False)
    assert np.array_equal(got.train_images, x) and np.array_equal(got.train_labels, y)
    assert got.test_ids.tolist() == list(range(60000, 60020)) and got.source == f"IDX files in {folder}"


@pytest.mark.parametrize(
    "case,message",
    [
        ("count", r"has 50 images but .*train-labels-idx1-ubyte.gz has 49 labels"),
        ("label", r"train-labels-idx1-ubyte.gz: record 7: label 10 outside 0..9"),
        ("magic", r"train-images-idx3-ubyte.gz: expected an IDX image file .*0x00000803.*found magic 0x00000801"),
        ("labelmagic", r"t10k-labels-idx1-ubyte.gz: expected an IDX label file .*found magic 0x00000c01"),
        ("size", r"train-images-idx3-ubyte.gz: expected an IDX image file of uint8 N x 28 x 28"),
        ("missing", r"t10k-images-idx3-ubyte.gz: file not found"),
    ],
)
def test_load_idx_dir_bad_input(tmp_path, sample, case, message):
    x, y = sample.train_images[:50], sample.train_labels[:50].astype(np.uint8)
    train_x, train_y, test_x, test_y = x, y, x[:20], y[:20]
    if case == "count":
        train_y = y[:49]
    elif case == "label":
        train_y = y.copy()
        train_y[7] = 10
    elif case == "magic":
        train_x = y  # a label file where the images belong
    elif case == "labelmagic":
        test_y = y[:20].astype(np.int32)
    elif case == "size":
        train_x = np.zeros((50, 28, 27), np.uint8)
    folder = _write_idx_dir(tmp_path / "d", train_x, train_y, test_x, test_y)
    if case == "missing":
        (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=message):
        fd.load_fashion_mnist(folder, download=False)


# -------------------------------------------------------------------------------------- sample


def test_shipped_sample_is_genuine(shared_fmnist, sample):
    full = fd.load_idx_dir(shared_fmnist)
    assert sample.train_images.shape == (10000, 28, 28) and sample.test_images.shape == (2000, 28, 28)
    assert np.array_equal(sample.train_images, full.train_images[:10000])
    assert np.array_equal(sample.train_labels, full.train_labels[:10000])
    assert np.array_equal(sample.test_images, full.test_images[:2000])
    assert np.array_equal(sample.test_labels, full.test_labels[:2000])
    files = sorted(p.name for p in fd.sample_dir().iterdir())
    assert files == sorted([*fd.IDX_FILES.values(), "SAMPLE.md"])
    assert sum(p.stat().st_size for p in fd.sample_dir().iterdir()) <= 6_000_000


def test_make_sample_rebuilds_the_shipped_bytes(shared_fmnist, tmp_path):
    fd.make_sample(shared_fmnist, tmp_path)
    for name in fd.IDX_FILES.values():
        assert (tmp_path / name).read_bytes() == (fd.sample_dir() / name).read_bytes(), name


@pytest.mark.parametrize(
    "kwargs,message",
    [({"n_train": 0}, "n_train must be a positive int"), ({"n_test": 10**6}, "asked for 10000 train / 1000000 test")],
)
def test_make_sample_rejects_bad_sizes(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fd.make_sample(fd.sample_dir(), tmp_path, **kwargs)


# ---------------------------------------------------------------------------------- resolution


def test_explicit_and_env_dirs_never_fall_back(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match=r"nope: data directory not found"):
        fd.load_fashion_mnist(missing, download=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no Fashion-MNIST found: expected the four IDX files"):
        fd.load_fashion_mnist(tmp_path / "empty")
    monkeypatch.setenv("FNNET_DATA_DIR", str(missing))
    with pytest.raises(DataError, match=r"^FNNET_DATA_DIR=.*nope: .*nope: data directory not found"):
        fd.load_fashion_mnist(download=False)


def test_env_dir_is_used(monkeypatch, tmp_path, sample, capsys):
    x, y = sample.train_images[:40], sample.train_labels[:40].astype(np.uint8)
    folder = _write_idx_dir(tmp_path / "env", x, y, x[:10], y[:10])
    monkeypatch.setenv("FNNET_DATA_DIR", str(folder))
    data = fd.load_fashion_mnist(download=False)
    assert data.source == f"IDX files in {folder}" and data.train_images.shape[0] == 40
    assert capsys.readouterr().err == ""  # found: no notice
    monkeypatch.setenv("FNNET_DATA_DIR", str(fd.sample_dir()))
    data = fd.load_fashion_mnist(download=False)
    # pointing at the shipped sample explicitly still marks it as the sample
    assert data.source == "shipped sample (10,000 train / 2,000 test)" and data.is_sample


def test_offline_without_download_uses_sample_with_notice(tmp_path, capsys):
    data = fd.load_fashion_mnist(download=False, cache_dir=tmp_path / "c")
    err = capsys.readouterr().err
    assert data.is_sample and data.source == "shipped sample (10,000 train / 2,000 test)"
    assert "full Fashion-MNIST set was not found" in err
    for hint in ("--data-dir", "FNNET_DATA_DIR", "download=True", str(tmp_path / "c" / "fashion-mnist")):
        assert hint in err
    fd.load_fashion_mnist(download=False, cache_dir=tmp_path / "c", verbose=False)
    assert capsys.readouterr().err == ""


def test_default_cache_dir_follows_xdg(tmp_path, monkeypatch):
    assert fd.default_cache_dir() == tmp_path / "xdg" / "fnnet"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert fd.default_cache_dir() == tmp_path / "home" / ".cache" / "fnnet"


@pytest.fixture
def serve():
    """``serve(folder) -> base URL`` of a ThreadingHTTPServer on 127.0.0.1 (port 0) in a thread."""
    servers = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_download_from_loopback_verifies_md5(shared_fmnist, serve, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FNNET_DOWNLOAD_URL", serve(shared_fmnist))
    cache = tmp_path / "cache"
    data = fd.load_fashion_mnist(cache_dir=cache)
    folder = cache / "fashion-mnist"
    assert data.source == f"downloaded to {folder}" and not data.is_sample
    assert sorted(p.name for p in folder.iterdir()) == sorted(OFFICIAL)  # no .part left
    for name, md5 in OFFICIAL.items():
        assert _md5(folder / name) == md5
        assert (folder / name).read_bytes() == (shared_fmnist / name).read_bytes()
    assert capsys.readouterr().err.count("downloading http://127.0.0.1:") == 4
    # next time the cache is used, with no network at all
    monkeypatch.setenv("FNNET_DOWNLOAD_URL", "http://127.0.0.1:9/")
    again = fd.load_fashion_mnist(cache_dir=cache)
    assert again.source == f"IDX files in {folder} (user cache)"
    assert np.array_equal(again.train_images, data.train_images)


def test_download_with_bad_md5_deletes_and_raises(shared_fmnist, serve, tmp_path, monkeypatch):
    bad = tmp_path / "server"
    bad.mkdir()
    for name in OFFICIAL:
        shutil.copyfile(shared_fmnist / name, bad / name)
    blob = bytearray((bad / "t10k-labels-idx1-ubyte.gz").read_bytes())
    blob[100] ^= 1
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(blob))
    monkeypatch.setenv("FNNET_DOWNLOAD_URL", serve(bad))
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as e:
        fd.load_fashion_mnist(cache_dir=cache, verbose=False)
    msg = str(e.value)
    assert "t10k-labels-idx1-ubyte.gz: MD5 mismatch" in msg
    assert OFFICIAL["t10k-labels-idx1-ubyte.gz"] in msg and hashlib.md5(blob).hexdigest() in msg
    assert not (cache / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists()
    assert not list((cache / "fashion-mnist").glob("*.part"))  # the bad download was deleted


def test_tampered_cache_is_refused_offline(sample, tmp_path):
    folder = tmp_path / "cache" / "fashion-mnist"
    x, y = sample.train_images[:30], sample.train_labels[:30].astype(np.uint8)
    _write_idx_dir(folder, x, y, x, y)  # valid IDX, but not the official files
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: MD5 [0-9a-f]{32} differs from the official"):
        fd.load_fashion_mnist(cache_dir=tmp_path / "cache", download=False)


@pytest.mark.parametrize("server", ["refused", "404"])
def test_network_failure_falls_back_to_sample(tmp_path, monkeypatch, capsys, serve, server):
    if server == "refused":
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/"
        detail = "Connection refused"
    else:
        (tmp_path / "empty").mkdir()
        url, detail = serve(tmp_path / "empty"), "HTTP Error 404"
    monkeypatch.setenv("FNNET_DOWNLOAD_URL", url)
    data = fd.load_fashion_mnist(cache_dir=tmp_path / "c")
    err = capsys.readouterr().err
    assert data.is_sample and f"download from {url} failed: " in err and detail in err
    assert "FNNET_DATA_DIR" in err
    assert not any((tmp_path / "c" / "fashion-mnist").iterdir())  # no partial files left


# ------------------------------------------------------------------------------------- CSV+PNG


@pytest.fixture
def small_csv(tmp_path, sample) -> Path:
    """The first 120 train / 40 test images of the sample in the tutorial's layout."""
    subset = (sample.train_images[:120], sample.train_labels[:120], sample.test_images[:40], sample.test_labels[:40])
    return fd.write_csv_png(subset, tmp_path / "csv", test_labels=True)


def test_csv_png_round_trip_and_ids_agree_with_idx(small_csv, sample, capsys):
    assert (small_csv / "train.csv").read_text().splitlines()[:3] == ["id,label", "0,9", "1,0"]
    got = fd.load_fashion_mnist(small_csv, cache_dir=small_csv / "uc")
    assert np.array_equal(got.train_images, sample.train_images[:120])
    assert np.array_equal(got.train_labels, sample.train_labels[:120])
    assert np.array_equal(got.test_images, sample.test_images[:40])
    assert np.array_equal(got.test_labels, sample.test_labels[:40])
    assert got.train_ids.tolist() == list(range(120)) and got.test_ids.tolist() == list(range(60000, 60040))
    assert got.source == f"CSV+PNG in {small_csv}" and got.train_labels.dtype == np.int32
    assert "train decoded, test decoded" in capsys.readouterr().err
    # each PNG is what Pillow reads back
    assert np.array_equal(np.asarray(Image.open(small_csv / "test" / "60007.png")), sample.test_images[7])


def test_csv_png_without_test_labels(tmp_path, sample):
    d = fd.FashionMNIST(
        sample.train_images[:30],
        sample.train_labels[:30],
        np.arange(100, 130),
        sample.test_images[:10],
        sample.test_labels[:10],
        np.arange(500, 510),
        "x",
    )
    out = fd.write_csv_png(d, tmp_path / "o")
    assert (out / "test.csv").read_text().splitlines()[:2] == ["id", "500"]
    got = fd.load_csv_png(out, cache_dir=tmp_path / "uc", verbose=False)
    assert got.test_labels is None and got.train_ids.tolist() == list(range(100, 130))
    assert np.array_equal(got.test_images, sample.test_images[:10])
    with pytest.raises(ValueError, match="test_labels=True but the dataset has no test labels"):
        fd.write_csv_png(got, tmp_path / "o2", test_labels=True)


def test_decoded_cache_is_used_and_invalidated(small_csv, sample, capsys):
    fd.load_csv_png(small_csv, cache_dir=small_csv / "uc")
    cached = sorted(p.name for p in (small_csv / ".fnnet_cache").iterdir())
    assert [n.split("-")[0] for n in cached] == ["test", "train"]
    capsys.readouterr()
    fd.load_csv_png(small_csv, cache_dir=small_csv / "uc")
    assert "train cached, test cached" in capsys.readouterr().err
    # replace one PNG: size/mtime change -> the train cache is rebuilt, the test cache kept
    png = small_csv / "train" / "5.png"
    Image.fromarray(np.full((28, 28), 7, np.uint8)).save(png)
    os.utime(png, ns=(1, 1))
    got = fd.load_csv_png(small_csv, cache_dir=small_csv / "uc")
    assert "train decoded, test cached" in capsys.readouterr().err
    assert np.all(got.train_images[5] == 7) and np.array_equal(got.train_images[6], sample.train_images[6])
    assert len(list((small_csv / ".fnnet_cache").glob("train-*.npy"))) == 1  # the stale one removed
    # edit the CSV -> rebuilt as well
    lines = (small_csv / "train.csv").read_text().splitlines()
    (small_csv / "train.csv").write_text("\n".join(lines[:50]) + "\n")
    assert fd.load_csv_png(small_csv, cache_dir=small_csv / "uc").train_images.shape == (49, 28, 28)
    assert "train decoded, test cached" in capsys.readouterr().err


def test_unwritable_data_dir_caches_under_user_cache(small_csv, capsys):
    (small_csv / ".fnnet_cache").write_text("not a folder")  # mkdir fails as on a read-only mount
    user = small_csv.parent / "usercache"
    fd.load_csv_png(small_csv, cache_dir=user)
    assert len(list((user / "png-cache").glob("*/train-*.npy"))) == 1
    capsys.readouterr()
    fd.load_csv_png(small_csv, cache_dir=user)
    assert "train cached, test cached" in capsys.readouterr().err


def _png_with_filters(image: np.ndarray, filters: list[int], *, ihdr: bytes | None = None) -> bytes:
    """A grayscale PNG whose row r uses filter ``filters[r]`` (written here, not by fnnet)."""
    img = image.astype(np.int64)
    rows = []
    for r in range(img.shape[0]):
        x, up = img[r], img[r - 1] if r else np.zeros_like(img[r])
        left = np.concatenate([[0], x[:-1]])
        upleft = np.concatenate([[0], up[:-1]])
        if filters[r] == 0:
            pred = np.zeros_like(x)
        elif filters[r] == 1:
            pred = left
        elif filters[r] == 2:
            pred = up
        elif filters[r] == 3:
            pred = (left + up) // 2
        else:
            p = left + up - upleft
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        rows.append(bytes([filters[r]]) + ((x - pred) % 256).astype(np.uint8).tobytes())

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    h, w = image.shape
    ihdr = ihdr if ihdr is not None else struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"tEXt", b"k\x00v")
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "filters",
    [
        [0] * 28,
        [1] * 28,
        [2] * 28,
        [3] * 28,
        [4] * 28,
        [r % 5 for r in range(28)],
        [(7 * r + 3) % 5 for r in range(28)],
    ],
)
def test_png_decoder_equals_pillow_for_every_row_filter(tmp_path, rng, sample, filters):
    images = np.concatenate([rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), sample.train_images[:3]])
    paths = []
    for k, image in enumerate(images):
        paths.append(tmp_path / f"{k}.png")
        paths[-1].write_bytes(_png_with_filters(image, filters))
    pillow = np.stack([np.asarray(Image.open(p)) for p in paths])
    got = decode_pngs(paths, workers=2, chunk=2)
    assert np.array_equal(pillow, images) and np.array_equal(got, images)


def test_png_unknown_filter_type_is_rejected(tmp_path):
    good = _png_with_filters(np.zeros((28, 28), np.uint8), [0] * 28)
    # same PNG with an illegal filter byte 5 on the last row (valid zlib and CRCs)
    body = zlib.compress(bytes(29) * 27 + bytes([5]) + bytes(28))
    start = good.index(b"IDAT") - 4
    end = start + 12 + struct.unpack(">I", good[start : start + 4])[0]
    idat = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    path = tmp_path / "bad.png"
    path.write_bytes(good[:start] + idat + good[end:])
    with pytest.raises(DataError, match=r"bad\.png \(here\): not a readable PNG"):
        decode_pngs([path], [" (here)"])


def _csv_dir(
    tmp_path: Path, sample, train_csv: str, test_csv: str = "id\n60000\n", images: dict[str, object] | None = None
) -> Path:
    """A CSV+PNG folder: ``train/<k>.png`` for ids 0..5 and ``test/60000.png``, then overrides."""
    root = tmp_path / "bad"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for k in range(6):
        Image.fromarray(sample.train_images[k]).save(root / "train" / f"{k}.png")
    Image.fromarray(sample.test_images[0]).save(root / "test" / "60000.png")
    for rel, content in (images or {}).items():
        if isinstance(content, bytes):
            (root / rel).write_bytes(content)
        else:
            content.save(root / rel)
    (root / "train.csv").write_text(train_csv)
    (root / "test.csv").write_text(test_csv)
    return root


GOOD_TRAIN = "id,label\n0,9\n1,0\n2,0\n"
RGB = Image.merge("RGB", [Image.new("L", (28, 28), v) for v in (10, 200, 30)])


@pytest.mark.parametrize(
    "train_csv,test_csv,images,message",
    [
        ("id,label\n0,9\n7,1\n", "id\n60000\n", {}, r"train/7\.png \(train\.csv line 3, id 7\): image file not found"),
        ("id,label\n0,9\n1,0\n0,3\n", "id\n60000\n", {}, r"train\.csv line 4: duplicate id 0 \(first on line 2\)"),
        ("id,label\n0,9\n1,10\n", "id\n60000\n", {}, r"train\.csv line 3: label 10 outside 0\.\.9"),
        ("id,label\n0,-1\n", "id\n60000\n", {}, r"train\.csv line 2: label -1 outside 0\.\.9"),
        ("id,label\n0,x\n", "id\n60000\n", {}, r"train\.csv line 2: label 'x' is not an integer"),
        ("id,label\n0,1\nabc,1\n", "id\n60000\n", {}, r"train\.csv line 3: id 'abc' is not an integer"),
        ("id,label\n0,1\n1,2,3\n", "id\n60000\n", {}, r"train\.csv line 3: 3 fields, expected 2"),
        ("id\n0\n", "id\n60000\n", {}, r"train\.csv line 1: header \['id'\] has no 'label' column"),
        ("name,label\n0,1\n", "id\n60000\n", {}, r"train\.csv line 1: header .* has no 'id' column"),
        ("", "id\n60000\n", {}, r"train\.csv: empty file"),
        (GOOD_TRAIN, "id,label\n60000,3\n60000,3\n", {}, r"test\.csv line 3: duplicate id 60000"),
        (GOOD_TRAIN, "id\n60001\n", {}, r"test/60001\.png \(test\.csv line 2, id 60001\): image file not found"),
        (
            GOOD_TRAIN,
            "id\n60000\n",
            {"train/1.png": Image.new("L", (32, 32))},
            r"train/1\.png \(train\.csv line 3, id 1\): image is 32x32, expected 28x28",
        ),
        (
            GOOD_TRAIN,
            "id\n60000\n",
            {"train/2.png": Image.new("P", (28, 28))},
            r"train/2\.png \(train\.csv line 4, id 2\): image mode 'P' not supported",
        ),
        (GOOD_TRAIN, "id\n60000\n", {"train/2.png": Image.new("I;16", (28, 28))}, r"image mode 'I;16' not supported"),
        (
            GOOD_TRAIN,
            "id\n60000\n",
            {"train/0.png": b"not a png at all"},
            r"train/0\.png \(train\.csv line 2, id 0\): not a readable PNG",
        ),
        (
            GOOD_TRAIN,
            "id\n60000\n",
            {"test/60000.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"},
            r"test/60000\.png \(test\.csv line 2, id 60000\): not a readable PNG",
        ),
    ],
)
def test_csv_png_bad_input(tmp_path, sample, train_csv, test_csv, images, message):
    root = _csv_dir(tmp_path, sample, train_csv, test_csv, images)
    with pytest.raises(DataError, match=message):
        fd.load_fashion_mnist(root, cache_dir=tmp_path / "uc", verbose=False)


def test_csv_png_missing_test_split(tmp_path, sample):
    root = _csv_dir(tmp_path, sample, GOOD_TRAIN)
    (root / "test.csv").unlink()
    with pytest.raises(DataError, match=r"test\.csv: file not found \(CSV\+PNG layout needs test\.csv"):
        fd.load_csv_png(root, cache_dir=tmp_path / "uc")


def test_truncated_png_is_rejected(tmp_path, sample):
    whole = (_csv_dir(tmp_path, sample, GOOD_TRAIN) / "train" / "1.png").read_bytes()
    shutil.rmtree(tmp_path / "bad")
    root = _csv_dir(tmp_path, sample, GOOD_TRAIN, images={"train/1.png": whole[: len(whole) // 2]})
    with pytest.raises(DataError, match=r"train/1\.png \(train\.csv line 3, id 1\): not a readable PNG"):
        fd.load_csv_png(root, cache_dir=tmp_path / "uc")


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_rgb_images_are_converted_with_a_warning(tmp_path, sample, mode):
    image = RGB if mode == "RGB" else RGB.convert("RGBA")
    root = _csv_dir(tmp_path, sample, GOOD_TRAIN, images={"train/1.png": image, "train/2.png": image})
    with pytest.warns(
        UserWarning, match=rf"2 image\(s\) were {mode} and were converted to grayscale \(first: .*train/1\.png\)"
    ):
        got = fd.load_csv_png(root, cache_dir=tmp_path / "uc", verbose=False)
    # Pillow's luma (ITU-R 601-2, rounded): (10*299 + 200*587 + 30*114) / 1000 = 123.8 -> 124
    assert np.all(got.train_images[1] == 124) and np.array_equal(got.train_images[0], sample.train_images[0])


# --------------------------------------------------------------------------------------- split


@pytest.mark.parametrize(
    "n,test_size,seed", [(10000, 0.1, 0), (10000, 0.1, 1), (997, 0.1, 3), (1000, 0.25, 42), (503, 0.33, 7)]
)
def test_stratified_split_equals_sklearn(sample, n, test_size, seed):
    from sklearn.model_selection import train_test_split

    x, y = sample.train_images[:n], sample.train_labels[:n]
    ours = fd.stratified_split(x, y, test_size=test_size, seed=seed)
    ref = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    assert len(ours) == 4
    for a, b in zip(ours, ref):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_stratified_split_is_stratified_and_a_partition(sample):
    y = sample.train_labels
    ids = np.arange(y.shape[0])
    tr_ids, va_ids, tr_y, va_y = fd.stratified_split(ids, y, test_size=0.1, seed=5)
    assert va_ids.shape == (1000,) and tr_ids.shape == (9000,)
    assert sorted(np.concatenate([tr_ids, va_ids]).tolist()) == ids.tolist()  # disjoint, covering
    assert np.array_equal(y[va_ids], va_y) and np.array_equal(y[tr_ids], tr_y)
    counts = np.bincount(y, minlength=10)
    # each class holds out its 10% rounded down or up
    assert np.all(np.abs(np.bincount(va_y, minlength=10) - counts * 0.1) < 1)
    again = fd.stratified_split(ids, y, test_size=0.1, seed=5)
    other = fd.stratified_split(ids, y, test_size=0.1, seed=6)
    assert np.array_equal(again[1], va_ids) and not np.array_equal(other[1], va_ids)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"test_size": 0.0}, ValueError, "test_size must be a float in \\(0, 1\\)"),
        ({"test_size": 1.0}, ValueError, "test_size must be a float in"),
        ({"test_size": "0.1"}, ValueError, "test_size must be a float in"),
        ({"seed": 1.5}, TypeError, "seed must be a non-negative int"),
        ({"seed": None}, TypeError, "seed must be a non-negative int"),
    ],
)
def test_stratified_split_validates(sample, kwargs, error, message):
    with pytest.raises(error, match=message):
        fd.stratified_split(sample.train_images[:100], sample.train_labels[:100], **kwargs)


def test_stratified_split_rejects_mismatch_and_singletons():
    with pytest.raises(ValueError, match="3 images but 4 labels"):
        fd.stratified_split(np.zeros((3, 2)), np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"classes \[2\] have fewer than 2 members"):
        fd.stratified_split(np.zeros((21, 2)), np.array([0] * 10 + [1] * 10 + [2]))


def test_to_features_matches_the_tutorials_scaling(sample, torch):
    x = sample.train_images[:500]
    got = fd.to_features(x)
    # the tutorial: float32 images divided by train_x.max() (255 here), flattened to 784
    t = torch.from_numpy(x.astype(np.float32))
    ref = (t / t.max()).reshape(-1, 784).numpy()
    assert got.dtype == np.float32 and got.shape == (500, 784)
    np.testing.assert_array_equal(got, ref)
