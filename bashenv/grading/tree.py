"""The agent's working tree, read from the host side and handed to a grading container.

Nothing runs inside the agent's box to take it: the Docker archive API streams the
workdir out (the engine reads the files; no process of the box is involved), so what the
agent did to its git (a deleted `.git`, a hostile `.git/config`, `.gitattributes` drivers,
hooks) cannot change what is graded. Every `.git` entry is dropped on the way: the grader
compares against its own record of the base tree (the image's read-only seed copy).
The stream is capped while it is read, and spooled to a temporary file, not memory.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, cast

from bashenv.errors import SandboxError
from bashenv.sandbox import Sandbox

TREE_CAP_MB = 512  # the most a working tree may hold (file contents, `.git` excluded)
_KEPT = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE)


class TreeTooLarge(Exception):
    """The agent's working tree is over the cap: graded as a patch that cannot be applied."""


@dataclass
class AgentTree:
    """A tar of the working tree, names relative to the workdir, no `.git` anywhere."""

    archive: IO[bytes]  # positioned at 0; closing it deletes the temporary file
    size: int  # bytes of the tar
    files: int  # regular files and symlinks in it
    dropped: list[str]  # members left out (special files, links into `.git`), for the log

    def close(self) -> None:
        self.archive.close()


class _Stream:
    """A file-like view of the engine's chunk iterator that refuses to read past `cap` bytes."""

    def __init__(self, chunks: Iterator[bytes], cap: int) -> None:
        self._chunks, self._cap, self.read_bytes = chunks, cap, 0
        self._buf, self._at = b"", 0  # the current chunk, and how much of it was read

    def read(self, size: int = -1) -> bytes:
        # Many small reads (tar headers) from megabyte chunks: slices only, never the
        # rest of the chunk copied again on each read.
        parts = []
        while size != 0:
            if self._at == len(self._buf):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self.read_bytes += len(chunk)
                if self.read_bytes > self._cap:
                    raise TreeTooLarge(f"the working tree is over {self._cap >> 20} MiB")
                self._buf, self._at = chunk, 0
            take = len(self._buf) - self._at if size < 0 else min(size, len(self._buf) - self._at)
            parts.append(self._buf[self._at:self._at + take])
            self._at += take
            if size > 0:
                size -= take
        return b"".join(parts)


def _under(name: str, links: set[str]) -> bool:
    parts = name.split("/")
    return any("/".join(parts[:i]) in links for i in range(1, len(parts)))


def _relative(name: str) -> str | None:
    """`repo/a/b` → `a/b`; None for the workdir itself and for anything under a `.git`."""
    parts = name.split("/")[1:]
    if not parts or parts == [""] or ".git" in parts:
        return None
    if any(p in ("", ".", "..") for p in parts) or name.startswith("/"):
        return None  # the engine never writes such names; a forged one is simply dropped
    return "/".join(parts)


def read_tree(box: Sandbox, cap_mb: int = TREE_CAP_MB) -> AgentTree:
    """The agent's workdir as a tar (see the module doc). Raises TreeTooLarge over the cap
    (counted on the raw stream, `.git` included) and SandboxError when the engine fails."""
    cap = (cap_mb << 20) + (cap_mb << 18)  # tar headers and padding on top of the contents
    chunks = box.read_archive(box.spec.workdir)
    out = tempfile.TemporaryFile(prefix="bashenv-tree-")  # noqa: SIM115 (returned open)
    kept: set[str] = set()
    links: set[str] = set()  # nothing may be extracted through a symlink
    dropped: list[str] = []
    files = 0
    try:
        # GNU long names carry raw bytes: a name that is not UTF-8 survives the round trip.
        with tarfile.open(fileobj=cast(IO[bytes], _Stream(iter(chunks), cap)), mode="r|",
                          errors="surrogateescape") as source, \
                tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT,
                             encoding="utf-8", errors="surrogateescape") as target:
            for member in source:
                name = _relative(member.name)
                if name is None:
                    continue
                if member.type not in _KEPT or _under(name, links):
                    dropped.append(name)
                    continue
                if member.type == tarfile.LNKTYPE:
                    link = _relative(member.linkname)
                    if link is None or link not in kept:
                        dropped.append(name)
                        continue
                    member.linkname = link
                member.name = name
                member.pax_headers = {}
                data = source.extractfile(member) if member.isreg() else None
                target.addfile(member, data)
                kept.add(name)
                if member.issym():
                    links.add(name)
                files += not member.isdir()
    except TreeTooLarge:
        out.close()
        raise
    except SandboxError:
        out.close()
        raise
    except tarfile.TarError as exc:
        out.close()
        raise SandboxError(f"cannot read the working tree of {box.id[:12]}: "
                           f"{box.why_dead() or exc}") from None
    finally:  # a read stopped early (over the cap) must not keep the engine's stream open:
        close = getattr(chunks, "close", None)  # it holds the box (its removal waits)
        if close is not None:
            close()
    size = out.tell()
    out.seek(0)
    return AgentTree(out, size, files, dropped)


def put_tree(box: Sandbox, tree: AgentTree) -> None:
    """Extract `tree` into the (empty) workdir of a grading container, in one API call."""
    tree.archive.seek(0)
    try:
        box.write_archive(box.spec.workdir, tree.archive)
    except SandboxError as exc:
        why = str(exc)
        dead = box.why_dead()
        if dead:
            raise SandboxError(f"cannot write the working tree into {box.id[:12]}: {dead}") from None
        # The box is fine, so the tree itself does not fit (e.g. it filled the disk bound).
        raise TreeTooLarge(f"the working tree could not be written for grading: {why}") from None


def stdin_input(box: Sandbox, tree: AgentTree, embed_max: int) -> bytes:
    """What the grading script reads on stdin for `tree`: its size line, then its bytes;
    over `embed_max` it goes straight into `box`'s workdir volume, which has the room
    (size 0 on the line)."""
    if tree.size > embed_max:
        put_tree(box, tree)
        return b"0\n"
    tree.archive.seek(0)
    return f"{tree.size}\n".encode() + tree.archive.read()
