"""Output files replaced whole: each is written to a hidden temporary file beside it and renamed into place
(`os.replace`, atomic within one folder), so that whoever reads it finds the previous file or the new one, never
the first half of the new one — after a crash, a Ctrl-C or a disk that filled up.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO


@contextmanager
def replacing(path: Path, *, binary: bool = False) -> Iterator[IO]:
    """An open file that becomes `path` once the block ends without an error, its bytes on disk (fsync) before
    the rename. On any error (Ctrl-C included) the temporary file is removed and `path` is left as it was; an
    OSError names `path`, not the temporary file."""
    # Not tempfile.mkstemp: it creates the file readable by its owner only, and the rename would carry that over
    # to an output that was readable by everyone (the umask's usual 0644) in the previous run.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb" if binary else "x", **({} if binary else {"encoding": "utf-8", "newline": "\n"})) \
                as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        _remove(temporary)
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        _remove(temporary)
        raise


def _remove(temporary: Path) -> None:
    with suppress(OSError):  # the error being raised says more than why the clean-up failed
        temporary.unlink(missing_ok=True)
