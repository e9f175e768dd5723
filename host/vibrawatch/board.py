"""The one place vibrawatch talks to a board: a small adapter over mpremote's Python API.

mpremote's authors declare its Python API unstable, so nothing else in vibrawatch imports
mpremote: if it changes, this file changes. Every failure becomes a BoardError whose message
says what the board answered and what to do.

    with Board("/dev/ttyACM0") as board:
        print(board.eval("1 + 1"))
        board.put(b"print('hi')", "/main.py")   # written, then checked by sha256 on the board
"""

import hashlib
import time

from .errors import VibrawatchError

# sys.implementation._mpy: bits 0-7 version, 8-9 sub-version, 10+ native architecture.
MPY_ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
             "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")
CHUNK = 1024  # bytes per write: larger chunks, fewer round trips over a slow link
READ_TIMEOUT_S = 5.0  # longest single read (a busy host may answer slowly), so no wait is endless
RAW_RETRY_S = 3.0  # between requests for the raw REPL
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"  # its ">" is read by mpremote


class BoardError(VibrawatchError):
    pass


def _mpremote():
    try:
        from mpremote.transport import TransportError, TransportExecError
        from mpremote.transport_serial import SerialTransport
    except ImportError as exc:
        raise BoardError("mpremote is not installed: pip install 'vibrawatch[board]'") from exc
    return SerialTransport, TransportError, TransportExecError


def board_exception(error_output):
    """The last line of a board traceback, e.g. 'MemoryError: memory allocation failed'."""
    lines = [ln.strip() for ln in error_output.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"


class Board:
    """A connected board (or emulated board) reached over a serial port."""

    def __init__(self, port, timeout=10.0):
        serial_transport, self._transport_error, self._exec_error = _mpremote()
        from serial import SerialException

        self._serial_error = SerialException
        self.port = port
        self.timeout = timeout
        self.answered = False  # has the board answered at the raw REPL since we opened it?
        try:
            self._t = serial_transport(port, baudrate=115200)
        except (self._transport_error, OSError) as exc:
            raise BoardError("cannot open %s (%s): is the board plugged in, and is no other "
                             "program (a serial monitor, Thonny) holding the port?"
                             % (port, exc)) from exc
        # Reads return after this long even when nothing comes, so every wait has a deadline
        # (with no timeout a read on a pseudo-terminal blocks for ever on a silent device).
        self._t.serial.timeout = READ_TIMEOUT_S

    def __repr__(self):
        return "Board(%r)" % self.port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            if self._t.in_raw_repl:
                self._t.exit_raw_repl()
            self._t.close()
        except (OSError, self._transport_error, self._serial_error):
            pass  # the board is gone already: nothing left to tidy

    # -- running code ----------------------------------------------------------------------

    def _raw(self):
        """Enter the raw REPL (Ctrl-C first: it stops whatever runs), within self.timeout;
        a board that does not answer is a BoardError quoting what it printed last."""
        if self._t.in_raw_repl:
            return
        serial = self._t.serial
        seen = b""
        end = time.monotonic() + self.timeout
        try:
            while not seen.endswith(RAW_BANNER) and time.monotonic() < end:
                # Asked again every few seconds: a busy board (or a starting one) can miss it.
                serial.write(b"\r\x03\x03")
                seen += self._read_for(0.2)
                serial.write(b"\r\x01")
                seen += self._read_until(RAW_BANNER, min(RAW_RETRY_S, end - time.monotonic()))
        except (self._serial_error, OSError) as exc:
            raise BoardError("lost contact with the board on %s (%s): check the cable and "
                             "try again" % (self.port, exc)) from exc
        if not seen.endswith(RAW_BANNER):
            raise BoardError("%s did not answer at the raw REPL within %.0f s; %s: is "
                             "MicroPython running on it and is this its port? Press its reset "
                             "button and try again" % (self.port, self.timeout, last_words(seen)))
        self._t.in_raw_repl = True
        self.answered = True

    def _read_for(self, seconds):
        return self._read_until(None, seconds)

    def _read_until(self, ending, seconds):
        # Bytes until ``ending`` (or for ``seconds``); short reads keep the deadline.
        data = b""
        end = time.monotonic() + seconds
        serial = self._t.serial
        serial.timeout = 0.1
        try:
            while time.monotonic() < end:
                # Byte by byte towards an ending: what follows it is mpremote's to read.
                data += serial.read(1 if ending else serial.in_waiting or 1)
                if ending is not None and data.endswith(ending):
                    break
        finally:
            serial.timeout = READ_TIMEOUT_S
        return data

    def detector_started(self):
        """Was vwatch's detector started since the board's last reset? (It is stopped now:
        entering the raw REPL interrupts it.)"""
        return self.exec("import sys\nm=sys.modules.get('vwatch.runtime')\n"
                         "print(1 if m and m._state is not None else 0)").strip() == "1"

    def restart_detector(self, timeout=30.0):
        """Soft-reset so that main.py starts the detector again; (True, start line) or
        (False, what the board printed instead)."""
        try:
            lines = self.soft_reset(wait_for="vw1 ", timeout=timeout)
        except BoardError as exc:
            return False, str(exc)
        last = lines[-1]
        if last.startswith("vw1 start"):
            return True, last
        return False, last

    def exec(self, code, timeout=None):
        """Run code on the board; return what it printed. Board exceptions -> BoardError."""
        self._raw()
        try:
            out = self._t.exec_raw(code, timeout=timeout or self.timeout)
        except (self._transport_error, self._serial_error, OSError) as exc:
            raise BoardError("lost contact with the board on %s (%s): check the cable and "
                             "try again" % (self.port, exc)) from exc
        stdout, stderr = out
        if stderr:
            raise BoardError("the board raised %s" % _explain(board_exception(
                stderr.decode(errors="replace"))))
        return stdout.decode(errors="replace")

    def exec_stream(self, code, on_line, idle_timeout=20.0):
        """Run code and hand each line it prints to ``on_line`` as it arrives (for output
        too long to hold, or to watch live). Board exceptions -> BoardError."""
        self._raw()
        pending = bytearray()
        last = [b""]  # the last line, for the message if the board falls silent

        def consume(chunk):
            pending.extend(chunk)
            while b"\n" in pending:
                end = pending.index(b"\n")
                last[0] = bytes(pending[:end])
                line = last[0].decode(errors="replace").rstrip("\r")
                del pending[: end + 1]
                on_line(line)

        serial = self._t.serial
        try:
            self._t.exec_raw_no_follow(code)
        except (self._transport_error, self._serial_error, OSError) as exc:
            raise BoardError("lost contact with the board on %s (%s): check the cable and "
                             "try again" % (self.port, exc)) from exc
        try:
            serial.timeout = 0.2  # so an idle board is noticed, on a pty too
            try:
                _, stderr = self._t.follow(idle_timeout, data_consumer=consume)
            finally:
                serial.timeout = READ_TIMEOUT_S
        except self._transport_error as exc:  # nothing came for idle_timeout seconds
            self.interrupt()
            raise BoardError("the board on %s printed nothing for %.0f s (%s); %s: check the "
                             "cable and try again" % (self.port, idle_timeout, exc,
                                                      last_words(last[0] + bytes(pending)))) \
                from exc
        except (self._serial_error, OSError) as exc:
            raise BoardError("lost contact with the board on %s (%s): check the cable and "
                             "try again" % (self.port, exc)) from exc
        if pending:
            on_line(bytes(pending).decode(errors="replace"))
        if stderr:
            raise BoardError("the board raised %s" % _explain(board_exception(
                stderr.decode(errors="replace"))))

    def interrupt(self):
        """Ctrl-C: stop whatever the board is running (after an error on our side)."""
        try:
            self._t.serial.write(b"\r\x03\x03")
            self._t.in_raw_repl = False
        except (OSError, self._serial_error):
            pass

    def eval(self, expression):
        """The value of a Python expression on the board, read back with repr/eval."""
        import ast

        text = self.exec("print(repr(%s))" % expression).strip()
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise BoardError("the board answered %r to %s" % (text, expression)) from exc

    # -- files ------------------------------------------------------------------------------

    def put(self, data, remote, progress=None):
        """Write ``data`` to ``remote`` and check its sha256 on the board."""
        self.exec("f=open(%r,'wb')\nw=f.write" % remote)
        for start in range(0, len(data), CHUNK):
            self.exec("w(%r)" % bytes(data[start : start + CHUNK]))
            if progress:
                progress(min(CHUNK, len(data) - start))
        self.exec("f.close()\ndel f, w")
        on_board = self.sha256(remote)
        if on_board != hashlib.sha256(data).hexdigest():
            raise BoardError("%s arrived corrupt on the board (sha256 %s, expected %s): try "
                             "again, with a shorter cable or a lower baud rate"
                             % (remote, on_board, hashlib.sha256(data).hexdigest()))

    def sha256(self, remote):
        """Hex sha256 of a file on the board, computed on the board (hashlib, in chunks)."""
        code = ("import hashlib, binascii\nh=hashlib.sha256()\nb=bytearray(256)\n"
                "with open(%r,'rb') as f:\n while 1:\n  n=f.readinto(b)\n  if not n: break\n"
                "  h.update(b if n==256 else b[:n])\nprint(binascii.hexlify(h.digest()).decode())"
                % remote)
        return self.exec(code).strip()

    def get(self, remote):
        return self.eval("open(%r,'rb').read()" % remote)

    def exists(self, remote):
        return self.exec("import os\ntry:\n os.stat(%r)\n print(1)\nexcept OSError:\n print(0)"
                         % remote).strip() == "1"

    def makedirs(self, remote):
        path = ""
        for part in remote.strip("/").split("/"):
            path += "/" + part
            self.exec("import os\ntry:\n os.mkdir(%r)\nexcept OSError:\n pass" % path)

    def rename(self, old, new):
        self.exec("import os\nos.rename(%r, %r)" % (old, new))

    def remove(self, remote, missing_ok=True):
        self.exec("import os\ntry:\n os.remove(%r)\nexcept OSError:\n if not %r: raise"
                  % (remote, missing_ok))

    def listdir(self, remote):
        return self.eval("__import__('os').listdir(%r)" % remote)

    # -- identity and reset -----------------------------------------------------------------

    def mpy_target(self):
        """(mpy version, sub-version, arch name or None) the board's MicroPython loads."""
        value = self.eval("getattr(__import__('sys').implementation, '_mpy', 0)")
        if not value:
            raise BoardError("this firmware does not say which .mpy files it loads "
                             "(no sys.implementation._mpy): deploy sources instead")
        arch = value >> 10
        return value & 0xFF, (value >> 8) & 3, MPY_ARCHS[arch] if arch < len(MPY_ARCHS) else None

    def soft_reset(self, wait_for=None, timeout=15.0):
        """Soft-reset into the friendly REPL (so main.py runs); return the lines printed until
        one contains ``wait_for`` (or until ``timeout``)."""
        try:
            # Stop whatever runs, and leave a raw REPL even if another program (a killed
            # mpremote) left the board in one: a soft reset there would skip main.py.
            self._t.serial.write(b"\r\x03\x03")
            time.sleep(0.1)
            self._t.serial.write(b"\r\x02")
            self._t.in_raw_repl = False
            time.sleep(0.2)
            self._t.serial.reset_input_buffer()
            self._t.serial.write(b"\x04")
        except (OSError, self._serial_error) as exc:
            raise BoardError("lost contact with the board on %s during reset (%s)"
                             % (self.port, exc)) from exc
        return self.read_lines(until=wait_for, timeout=timeout)

    def read_lines(self, until=None, timeout=15.0):
        """Lines the board prints, until one contains ``until`` or ``timeout`` passes."""
        try:
            return self._read_lines(until, timeout)
        finally:
            self._t.serial.timeout = READ_TIMEOUT_S

    def _read_lines(self, until, timeout):
        lines, buf = [], b""
        end = time.monotonic() + timeout
        self._t.serial.timeout = 0.1  # short reads, so the deadline is kept
        while time.monotonic() < end:
            try:
                chunk = self._t.serial.read(self._t.serial.in_waiting or 1)
            except (OSError, self._serial_error) as exc:
                raise BoardError("lost contact with the board on %s (%s)"
                                 % (self.port, exc)) from exc
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace").rstrip("\r")
                lines.append(text)
                if until is not None and until in text:
                    return lines
        if until is not None:
            raise BoardError("the board did not print %r within %.0f s; it printed:\n  %s"
                             % (until, timeout, "\n  ".join(lines[-10:]) or "(nothing)"))
        return lines


def last_words(data):
    """What a board printed last, for an error message."""
    text = data.decode(errors="replace").strip() if isinstance(data, bytes) else str(data)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "it printed nothing"
    return "the last it printed was %r" % lines[-1][-120:]


def iter_lines(board, idle_timeout=None):
    """Lines as the board prints them (decoded, without line ends), forever or until nothing
    came for ``idle_timeout`` seconds. A lost connection raises BoardError."""
    buf = b""
    last_line = b""
    serial = board._t.serial
    serial.timeout = 0.2
    last = time.monotonic()
    while True:
        try:
            chunk = serial.read(serial.in_waiting or 1)
        except (OSError, board._serial_error) as exc:
            raise BoardError("lost contact with the board on %s (%s)" % (board.port, exc)) from exc
        if chunk:
            last = time.monotonic()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    last_line = line
                yield line.decode(errors="replace").rstrip("\r")
        elif idle_timeout is not None and time.monotonic() - last > idle_timeout:
            raise BoardError("the board on %s printed nothing for %.0f s (%s): is vwatch "
                             "running on it? `vibrawatch deploy` or a reset starts it"
                             % (board.port, idle_timeout, last_words(last_line + buf)))


def _explain(last_line):
    if last_line.startswith("MemoryError"):
        return "%s: the board ran out of heap; use a smaller --window or fewer --bands" % (
            last_line)
    return last_line
