"""One grading as one process in the grading container, over one attached stream.

Each Docker API round trip costs 60-90 ms, more than the rest of a grading's own work, so
the grading script is a single exec (started ahead, with a warm container: BOOTSTRAP) and
everything travels on its stream: the script, then the inputs go in on its stdin (a tar
of known size, read with `head -c`; an agent's tree after it); when the tests have ended it
prints a line and waits; the host then kills every process of the test user from outside
(by cgroup) and answers on stdin; the script collects the results and writes them as a
tar of its root-only results directory after a second line. Both lines carry a random
token the script reads from its inputs, which nothing the agent wrote can see before the
tests and no test process can print here (their output goes to a file; the stream is
root's), and after the results line nothing is parsed as a line again.
"""

from __future__ import annotations

import io
import os
import select
import tarfile
import time
from collections.abc import Callable

from bashenv.errors import SandboxError
from bashenv.sandbox import Sandbox, Stream
from bashenv.sandbox.output import CappedBuffer
from bashenv.sandbox.spec import ExecResult

# The grading process starts before its script is known (a warm pool starts it with its
# container, see open_grading): a root bash that reads a line "<script bytes> <time limit>"
# and the script from stdin, which only the host holds, and runs it under `timeout`.
# Its stderr goes into its stdout: one pipe keeps the order of what it writes (the engine
# copies two pipes independently, so an error message written just before the results
# line could arrive after it, inside the results tar: seen as a patch that does not apply
# graded `error`, its `git apply --check` message breaking the archive).
BOOTSTRAP = ('IFS=" " read -r size limit && script=$(head -c "$size") && '
             'exec timeout -s KILL "$limit" bash -c "$script" 2>&1')
OUTPUT_CAP = 1 << 20  # the script's own output kept (head + tail), as an exec's
RESULTS_CAP = 128 << 20  # the results tar (the report alone may be 64 MiB)
DONE, RESULTS = "tests-done", "results"


def input_tar(files: dict[str, bytes]) -> bytes:
    """`files` (paths relative to where the script extracts them) as a tar, parents first."""
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as archive:
        dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)},
                      key=lambda d: d.count("/"))
        for directory in dirs:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            archive.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, now
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def open_grading(box: Sandbox) -> Stream:
    """The grading process, waiting for its script (BOOTSTRAP); a pool's opener."""
    return box.open_stream(["bash", "-c", BOOTSTRAP], user="root")


class GradingRun:
    """The host's end of the grading script (see the module doc), run in `box` for at most
    `limit` seconds, on `stream` (open_grading's; opened now when None)."""

    def __init__(self, box: Sandbox, script: str, limit: int, token: str, timeout: float,
                 stream: Stream | None = None) -> None:
        self.box, self.token, self.deadline = box, token.encode(), time.monotonic() + timeout
        body = script.encode()
        self._script = f"{len(body)} {int(limit)}\n".encode() + body
        self.output = CappedBuffer(OUTPUT_CAP)
        self.code: int | None = None  # the script's exit status, from the results line
        self._done = b"\n" + self.token + f":{DONE}\n".encode()
        self._results_line = b"\n" + self.token + f":{RESULTS} ".encode()
        self._tests_done = False
        self._pending = b""  # output not yet known not to hold a line of ours
        self._results: bytearray | None = None  # the results tar, once its line was seen
        self._stream = stream if stream is not None else open_grading(box)

    def run(self, inputs: bytes, after_tests: Callable[[], bytes],
            then: Callable[[], bytes] | None = None) -> ExecResult:
        """Send `inputs` (and, once they are out, what `then()` gives: it may block, e.g.
        on a tree still being read, while the script starts), answer the script with
        `after_tests()` once its tests ended, and read to the end. The exit status is the
        script's own (-1 when it was killed)."""
        fd, outgoing, answered = self._stream.fileno(), memoryview(self._script + inputs), False
        try:
            while True:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise SandboxError(f"the grading in {self.box.id[:12]} did not end in time")
                readable, writable, _ = select.select([fd], [fd] if outgoing else [], [], left)
                if writable:
                    try:
                        outgoing = outgoing[os.write(fd, outgoing):]
                    except BlockingIOError:
                        pass
                    except OSError:  # the script is gone (it failed early): read its end
                        outgoing, then = memoryview(b""), None
                    if not outgoing and then is not None:
                        # The deadline is the script's: time spent reading the agent's
                        # tree on the host is not the tests' (else a slow read were infra).
                        waited = time.monotonic()
                        outgoing, then = memoryview(then()), None
                        self.deadline += time.monotonic() - waited
                if not readable:
                    continue
                try:
                    data = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    break
                self._feed(self._stream.decode(data))
                if self._tests_done and not answered:
                    answered = True
                    outgoing = memoryview(bytes(outgoing) + after_tests())
        finally:
            self._stream.close()
        if self.code is None:  # no results line: killed, or it failed before its trap was set
            dead = self.box.why_dead()
            if dead:  # the engine's fault or the box's end, not the change's: an infra error
                raise SandboxError(f"the grading in {self.box.id[:12]} broke off: {dead}")
            self.code = self._stream.exit_code()
        if self._results is None:
            self.output.add(self._pending)
        return ExecResult(self.code, self.output.data())

    @property
    def tests_done(self) -> bool:
        """The script said its tests had ended (whatever failed, failed after them)."""
        return self._tests_done

    def _feed(self, data: bytes) -> None:
        if self._results is not None:  # past the results line: all of it is the tar
            self._results += data
            if len(self._results) > RESULTS_CAP:
                raise SandboxError(f"the results of the grading in {self.box.id[:12]} are over "
                                   f"{RESULTS_CAP >> 20} MiB")
            return
        self._pending += data
        if not self._tests_done and (at := self._pending.find(self._done)) >= 0:
            self.output.add(self._pending[:at])
            self._pending = self._pending[at + len(self._done):]
            self._tests_done = True
        if (at := self._pending.find(self._results_line)) >= 0:
            line_end = self._pending.find(b"\n", at + len(self._results_line))
            if line_end < 0:
                return  # the rest of the line is still on its way
            self.output.add(self._pending[:at])
            status = self._pending[at + len(self._results_line):line_end]
            self.code = int(status) if status.isdigit() else -1
            self._results = bytearray(self._pending[line_end + 1:])
            self._pending = b""
            return
        keep = len(self._results_line) + 8  # a line of ours may be cut across two reads
        if len(self._pending) > keep:
            self.output.add(self._pending[:-keep])
            self._pending = self._pending[-keep:]

    def files(self) -> dict[str, bytes]:
        """The regular files of the results tar, by name (empty without results)."""
        found: dict[str, bytes] = {}
        if not self._results:
            return found
        try:
            with tarfile.open(fileobj=io.BytesIO(self._results), mode="r:") as archive:
                for member in archive:
                    handle = archive.extractfile(member) if member.isreg() else None
                    if handle is not None:
                        found[member.name.removeprefix("./")] = handle.read()
        except tarfile.TarError as exc:
            raise SandboxError(f"the results of the grading in {self.box.id[:12]} are not a "
                               f"readable archive: {exc}") from None
        return found
