"""A folder of equal-size images decoded once into uint8 tensors, cached on disk under a key of its file list.

The cache file is `<cache_dir>/<folder name>-<key>.pt`, where the key is `files_digest` of the folder
(relative paths and sizes), so a file added, removed, renamed or resized gives a new key and a rebuild;
an unchanged folder is read back without decoding. Files are written to a temporary name and renamed,
so a reader never sees half a file; a temporary file left by a killed writer is never read.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.datasets.folder import IMG_EXTENSIONS

from prunelab.atomic import save_torch
from prunelab.data.folder import class_folders, files_digest, folder_files
from prunelab.errors import ConfigError
from prunelab.paths import user_cache


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/prunelab/folders, else ~/.cache/prunelab/folders (data folders may be read-only)."""
    return user_cache("folders")


def image_files(root: Path, setting: str) -> list[tuple[str, int]]:
    """`folder_files(root)`, raising ConfigError for a class folder without files or a file that is no image."""
    files = folder_files(root)
    if empty := sorted(set(class_folders(root)) - {name.split("/")[0] for name, _ in files}):
        raise ConfigError(setting, f"class folder {root / empty[0]} holds no images", "add its images or remove it")
    for name, _ in files:
        if not name.lower().endswith(IMG_EXTENSIONS):
            raise ConfigError(
                setting,
                f"{root / name} is not an image file (expected one of {' '.join(IMG_EXTENSIONS)})",
                "remove it from the class folders",
            )
    return files


def image_shape(path: Path | str) -> tuple[int, int, int]:
    """(3, height, width) of the image at `path` as decoded to RGB, read from its header."""
    with Image.open(path) as image:
        return 3, image.height, image.width


def decode_image(path: Path | str) -> np.ndarray:
    """The image at `path` as H,W,3 uint8 RGB, as torchvision's ImageFolder loads it."""
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def decode_files(root: Path, files: Sequence[tuple[str, int]], setting: str) -> tuple[Tensor, Tensor]:
    """uint8 N,3,H,W images and int64 labels of `files` under `root`; ConfigError naming the first file that
    cannot be decoded or whose size differs from the first image's."""
    first = root / files[0][0]
    x = torch.empty((len(files), *image_shape(first)), dtype=torch.uint8)
    for i, (name, _) in enumerate(files):
        path = os.path.join(root, name)
        try:
            pixels = torch.from_numpy(decode_image(path)).permute(2, 0, 1)
        except (OSError, SyntaxError, ValueError) as error:
            reason = " ".join(str(error).split())
            raise ConfigError(setting, f"{path} cannot be decoded ({reason})", "replace or remove the file") from None
        if pixels.shape != x.shape[1:]:
            raise ConfigError(
                setting,
                f"{path} is {pixels.shape[2]}x{pixels.shape[1]} pixels but {first} is {x.shape[3]}x{x.shape[2]}",
                "give every image the same size, or use dataset=imagefolder, which resizes each image",
            )
        x[i] = pixels
    return x, torch.tensor([label for _, label in files], dtype=torch.long)


def cache_path(root: Path, files: Sequence[tuple[str, int]], cache_dir: Path) -> Path:
    """Where the decoded images of `root` are cached: named by the folder and keyed by its file list and sizes."""
    return cache_dir / f"{root.name}-{files_digest(root, files)}.pt"


def cached_images(root: Path, setting: str, cache_dir: Path) -> tuple[Tensor, Tensor]:
    """uint8 N,3,H,W images and int64 labels of the folder `root`: read from the cache, else decoded and cached."""
    files = image_files(root, setting)
    path = cache_path(root, files, cache_dir)
    if path.is_file():
        cached = torch.load(path, weights_only=True)
        return cached["x"], cached["y"]
    x, y = decode_files(root, files, setting)
    try:
        save_torch(path, {"x": x, "y": y})
    except OSError as error:
        reason = " ".join(str(error).split())
        raise ConfigError("dataset.cache_dir", f"cannot write {path} ({reason})", "set it to a writable folder") from None
    return x, y
