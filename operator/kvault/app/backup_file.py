"""What ``kvault vault backup|restore`` reads of a whole-vault backup file without its key: the
header (vault, counts, digest) and the chunk framing, to show progress and to see that a file
is complete before it is kept (:mod:`kvault.vault.backupfile` owns the format; the CLI reaches
it through here)."""

from __future__ import annotations

from kvault.vault.backupfile import MEDIA_TYPE, FileError, Header, Splitter

__all__ = ["MEDIA_TYPE", "FileError", "Header", "Splitter"]
