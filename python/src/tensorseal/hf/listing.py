"""The files of a sealed model directory, listed as the TypeScript reader lists them
(src/integrations/model-dir/walk.ts): regular files, and links to regular files, as sorted
relative ``/`` paths; a link to a directory or anything else that is not a regular file is
refused (``E_USAGE``)."""

from __future__ import annotations

import os
import stat

from ..errors import error
from .manifest import check_relative_path


def list_files(root: str, rel: str = "") -> list[str]:
    """Sorted relative paths of the regular files under ``root`` (links to files followed)."""
    out: list[str] = []
    here = os.path.join(root, rel) if rel else root
    try:
        entries = list(os.scandir(here))
    except OSError as e:
        raise error("E_IO", f"cannot list the directory: {e.strerror}").naming(here) from None
    for e in entries:
        path = f"{rel}/{e.name}" if rel else e.name
        check_relative_path(path)
        if e.is_dir(follow_symlinks=False):
            out.extend(list_files(root, path))
            continue
        try:
            st = os.stat(e.path)  # follows a link, as the TS walk does for Hugging Face caches
        except OSError as err:
            raise error("E_IO", f"cannot stat the file: {err.strerror}").naming(e.path) from None
        if not stat.S_ISREG(st.st_mode):
            raise error("E_USAGE", "not a regular file (or a link to one): remove it").naming(e.path)
        out.append(path)
    out.sort()
    return out

