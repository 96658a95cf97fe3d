"""Safe extraction of untrusted .zip archives.

Refused (and reported, never silently dropped): entries with absolute paths or
`..` components (zip-slip), symbolic links, and encrypted entries. The total
uncompressed size is bounded, counting the bytes actually inflated rather than
trusting the sizes the archive declares (zip bombs lie about them). Extraction
goes into a temporary folder that is renamed into place only when complete.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from colorizer.core.errors import UserError

_CHUNK = 1 << 20


class ArchiveError(UserError, ValueError):
    """The archive as a whole cannot be used (not a zip, or over the size limit)."""


def extract_zip(archive: Path, destination: Path, max_bytes: int) -> list[dict]:
    """Extract `archive` into `destination` (which must not exist yet).

    Returns the refused entries as `{"file", "reason"}` dicts.
    """
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    refused = []
    try:
        with zipfile.ZipFile(archive) as zf:
            budget = [max_bytes]
            for info in zf.infolist():
                reason = _refusal(info)
                if reason:
                    refused.append({"file": info.filename, "reason": reason})
                elif not info.is_dir():
                    _extract_member(zf, info, partial, budget, archive)
    except zipfile.BadZipFile as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise ArchiveError(f"data.source: {archive} is not a readable .zip archive ({err})") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(destination)
    return refused


def _refusal(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path in archive (refused: would write outside the extraction folder)"
    if ".." in path.parts:
        return "'..' in archive path (refused: zip-slip, would write outside the extraction folder)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link in archive (refused: could point outside the extraction folder)"
    if info.flag_bits & 0x1:
        return "encrypted archive entry (refused: no password)"
    return None


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path, budget: list[int], archive: Path):
    target = root.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as source, open(target, "wb") as sink:
        while chunk := source.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise ArchiveError(
                    f"data.source: {archive} inflates to more than data.max_archive_gib; refused as a "
                    "possible zip bomb (raise data.max_archive_gib if the archive is genuine)"
                )
            sink.write(chunk)
