"""Atomic writes: a file appears whole or not at all, whatever kills the process in between."""

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


@contextmanager
def replacing(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; once the block succeeds it is renamed onto `path`.

    A failure inside the block removes the temporary file and leaves `path` as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: two writers never share a temp file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path | str, text: str) -> None:
    """Write `text` to `path` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text)


def copy_file(source: Path | str, path: Path | str) -> None:
    """Copy `source` to `path` atomically."""
    import shutil

    with replacing(path) as tmp:
        shutil.copyfile(source, tmp)


def write_json(path: Path | str, value) -> None:
    """Write `value` as indented JSON to `path` atomically (non-JSON values as their str)."""
    write_text(path, json.dumps(value, indent=1, default=str))


def write_table(path: Path | str, rows: "list[dict] | pd.DataFrame") -> None:
    """Write `rows` (dicts or a DataFrame) as a CSV table to `path` atomically."""
    import pandas as pd

    with replacing(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


def save_torch(path: Path | str, obj) -> None:
    """`torch.save(obj, path)` atomically."""
    import torch

    with replacing(path) as tmp:
        torch.save(obj, tmp)


def save_figure(path: Path | str, figure: "Figure", **savefig) -> None:
    """`figure.savefig(path, **savefig)` atomically, in the format `path`'s suffix names."""
    with replacing(path) as tmp:
        figure.savefig(tmp, format=Path(path).suffix.removeprefix("."), **savefig)


def save_program(path: Path | str, program) -> None:
    """`torch.export.save(program, path)` atomically."""
    import io

    import torch

    buffer = io.BytesIO()  # torch warns of a file name that does not end in .pt2, as the temporary file's does
    torch.export.save(program, buffer)
    with replacing(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
