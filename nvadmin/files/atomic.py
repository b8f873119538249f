"""Files that appear complete or not at all.

An export is written to a hidden temporary file in the destination folder (same file system,
so the final ``rename`` is atomic), created with mode 0600 because it holds PHI, fsynced, and
only then renamed to its final name; the folder is fsynced so the rename survives a power cut.
On cancel or error the temporary file is removed. A crash (killed process, power cut) can still
leave one behind: its name carries the writing process's id, and :func:`sweep_stale` removes
those whose process is gone at the start of the next export into that folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from nvadmin.errors import UserError

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".nvexport-part"
_TEMP_NAME = re.compile(
    r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<nonce>[0-9a-f]{8})" + re.escape(TEMP_SUFFIX) + "$"
)
FILE_MODE = 0o600
BUFFER_SIZE = 1 << 20

# The system calls that can fail with ENOSPC, EDQUOT or EIO; named here so the failure tests
# can make exactly these fail at the Nth call.
_open = os.open
_write = os.write
_fsync = os.fsync
# A range of one file copied into another by the kernel (Linux), not through this process.
_copy_file_range = getattr(os, "copy_file_range", None)
# Where it is refused, the bytes (read anyway, for the hash) are written instead.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}

# Temporary files being written by this process (another thread's live export is not stale).
_active: set[Path] = set()
_active_lock = threading.Lock()


class ExportWriteError(UserError):
    """The export file could not be written (disk full, permission denied, ...)."""


def describe_os_error(error: OSError, path: Path) -> str:
    """A one-line message for a failed file operation on ``path``."""
    folder = path.parent
    code = error.errno
    if code == errno.ENOSPC:
        return f"the disk is full: no space left in {folder}; no file was written"
    if code == errno.EDQUOT:
        return f"disk quota exceeded in {folder}; no file was written"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied: cannot write to {folder}"
    if code == errno.EROFS:
        return f"{folder} is on a read-only file system"
    if code == errno.ENOENT:
        return f"folder {folder} does not exist"
    if code == errno.ENOTDIR:
        return f"{folder} is not a folder"
    if code == errno.EISDIR:
        return f"{path} is a folder; choose a file name"
    return f"cannot write {path}: {error.strerror or error}"


# What an existing destination that is not a regular file is, as a message names it.
_NOT_REGULAR: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_regular_file(path: Path) -> str | None:
    """Why ``path`` may not be replaced by a written file, even when replacing is allowed: it
    exists and is not a regular file. A file is published by renaming over its destination,
    which would turn a device, a FIFO or a socket into a regular file and replace a symbolic
    link itself (not the file it points to). None when ``path`` is a regular file or absent."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None  # absent, or out of reach: then writing it says why
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
    return f"{path} is {kind}; nvadmin replaces only regular files (choose another name)"


def temp_path_for(destination: Path) -> Path:
    name = f".{destination.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    return destination.with_name(name)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def sweep_stale(folder: Path) -> list[Path]:
    """Remove temporary export files left in ``folder`` by processes that no longer run."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    me = os.getpid()
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(match["pid"])
        path = Path(entry.path)
        with _active_lock:
            busy = path in _active
        if busy or (pid != me and _process_alive(pid)):
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as error:
            log.warning("could not remove stale export file %s: %s", path, error)
            continue
        log.info("removed stale export file %s", path)
        removed.append(path)
        removed += _remove_companions(path)
    return removed


def _remove_companions(path: Path) -> list[Path]:
    """Remove what SQLite keeps beside a database written under a temporary name (a case
    file's staging database: its write-ahead log and that log's index); those removed."""
    removed = []
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            companion.unlink()
            removed.append(companion)
    return removed


def fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # not supported on this platform/file system; the data itself is synced
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFile:
    """A file written under a temporary name and published by :meth:`publish`.

    Usage::

        with AtomicFile(destination) as out:
            out.write(b"...")
            out.finish()        # flush + fsync + close; sha256 and size known
            out.publish()       # rename to the destination
        # leaving the block without publish() removes the temporary file

    Every OSError becomes an :class:`ExportWriteError` with a plain message. A file that is
    only a part of another (``hashed=False``, see :meth:`append`) is never published and
    skips the hashing.
    """

    def __init__(self, destination: Path, *, hashed: bool = True) -> None:
        self.destination = destination
        self.temp_path = temp_path_for(destination)
        self._sha = hashlib.sha256() if hashed else None
        self._kernel_copy = _copy_file_range is not None
        self.size = 0
        self._fd: int | None = None
        self._buffer = bytearray()
        self._published = False

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> AtomicFile:
        with _active_lock:
            _active.add(self.temp_path)
        try:
            self._fd = _open(
                self.temp_path,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                FILE_MODE,
            )
            os.fchmod(self._fd, FILE_MODE)  # whatever the umask says, only the owner may read
        except OSError as error:
            self._forget()
            raise ExportWriteError(describe_os_error(error, self.destination)) from error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._published:
            self.discard()

    @property
    def sha256(self) -> str:
        if self._sha is None:
            raise ValueError("this part file is not hashed")
        return self._sha.hexdigest()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data
        if len(self._buffer) >= BUFFER_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data, self._buffer = self._buffer, bytearray()
        fd = self._take(data)
        try:
            _write_all(fd, data)
        except OSError as error:
            raise ExportWriteError(describe_os_error(error, self.destination)) from error

    def _take(self, data: bytes | bytearray) -> int:
        """The file's descriptor, ``data`` hashed and counted, about to be written."""
        if self._fd is None:
            raise ExportWriteError("the export file is already closed")
        if self._sha is not None:
            self._sha.update(data)
        self.size += len(data)
        return self._fd

    def seekable_file(self) -> io.RawIOBase:
        """The temporary file for a writer that goes back over what it wrote (a ZIP writes
        each entry's sizes before it): a file object on this file's descriptor, written
        through at once (what a buffer still held when a write failed would be flushed again
        when the object is collected, and fail again). Its OSErrors are the caller's to
        describe; what is written through it is not hashed."""
        self.flush()
        if self._fd is None:
            raise ExportWriteError("the export file is already closed")
        return _SeekableFile(self._fd)

    def append(self, part: AtomicFile, growing: Callable[[], bool] = lambda: False) -> None:
        """Write what ``part`` holds (a file under its temporary name, written from its start
        by one writer) after what this file holds, hashed as if it had been written here.
        While ``growing()`` (which may wait a while for the writer) says the writer is still
        at work, what it has written so far is taken, and then the rest."""
        self.flush()
        try:
            with open(part.temp_path, "rb", buffering=0) as source:
                while True:
                    more = growing()  # asked first: once it says no, the file is whole
                    while block := source.read(BUFFER_SIZE):
                        self._append_block(source.fileno(), block, source.tell() - len(block))
                    if not more:
                        return
        except OSError as error:
            raise ExportWriteError(describe_os_error(error, self.destination)) from error

    def _append_block(self, source: int, block: bytes, offset: int) -> None:
        """``block``, read from ``source`` at ``offset``: hashed, and copied from file to file
        by the kernel where it can (the export's 1 GB part at 5M rows: 0.85 s so, 2.2-2.6 s
        written from this process)."""
        fd = self._take(block)
        done = 0
        while self._kernel_copy and done < len(block):
            try:
                copied = _copy_file_range(source, fd, len(block) - done, offset + done)  # type: ignore[misc]
            except OSError as error:
                if error.errno not in _NO_KERNEL_COPY:
                    raise
                copied = 0
            if not copied:
                self._kernel_copy = False
            done += copied
        _write_all(fd, memoryview(block)[done:])

    def finish(self) -> None:
        """Flush, fsync and close: the content is on disk under the temporary name."""
        self.flush()
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            _fsync(fd)
        except OSError as error:
            os.close(fd)
            raise ExportWriteError(describe_os_error(error, self.destination)) from error
        try:
            os.close(fd)
        except OSError as error:
            raise ExportWriteError(describe_os_error(error, self.destination)) from error

    def publish(self) -> None:
        """Give the finished file its final name (replacing an older file of that name)."""
        if self._fd is not None:
            self.finish()
        try:
            os.replace(self.temp_path, self.destination)
        except OSError as error:
            raise ExportWriteError(describe_os_error(error, self.destination)) from error
        self._published = True
        self._forget()
        fsync_folder(self.destination.parent)

    def discard(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            os.unlink(self.temp_path)
            _remove_companions(self.temp_path)
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("could not remove %s: %s", self.temp_path, error)
        self._forget()

    def _forget(self) -> None:
        with _active_lock:
            _active.discard(self.temp_path)


class _SeekableFile(io.RawIOBase):
    """A descriptor as a seekable binary file that writes every byte or raises (a raw
    ``FileIO`` may write part of what it is given, and ``zipfile`` does not look)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        _write_all(self._fd, view)
        return view.nbytes

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_CUR)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view) :]


def write_file(path: Path, data: bytes) -> None:
    """Write a small file whole, atomically, readable by the owner only (reports, charts and
    flag lists name patients and people); :class:`ExportWriteError` says what went wrong."""
    with AtomicFile(path) as out:
        out.write(data)
        out.publish()
