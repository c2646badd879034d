"""Which file /api/images/{id} may serve: the document's stored filename under the image
folder, resolved (symbolic links and `..` followed) and checked to stay inside it."""

from __future__ import annotations

import mimetypes
from pathlib import Path


def image_path(folder: Path, filename: object) -> Path | None:
    """The image file `filename` names inside `folder`, or None when it names nothing there:
    not a string, an absolute path, a path that leaves the folder once resolved, a missing
    file, or a file that is not an image by its name."""
    if not isinstance(filename, str) or not filename or "\x00" in filename:
        return None
    root = folder.resolve()
    candidate = (root / filename).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    kind, _ = mimetypes.guess_type(candidate.name)
    return candidate if kind is not None and kind.startswith("image/") else None
