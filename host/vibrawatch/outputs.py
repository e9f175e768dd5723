"""Every file vibrawatch writes goes through here, so that nothing the user had is lost.

- ``check_file`` / ``check_folder`` run before any long work: an output that is also an input,
  a folder where a file is wanted (or the reverse), a missing or read-only folder are refused
  with a message that names the option and says what to do.
- ``atomic_path`` / ``atomic_open`` / ``write_bytes`` write to a unique temporary name beside
  the target (same folder, so the same filesystem), fsync it, and rename it into place only
  when complete; on an error the temporary file is removed and any old file stays as it was.

    check_file(args.output, "-o", inputs=args.recordings)     # before fitting
    with atomic_open("scores.csv") as fh:                     # replaced only when complete
        fh.write("...")
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import VibrawatchError


class OutputError(VibrawatchError):
    pass


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return Path(a).resolve() == Path(b).resolve()


def _check_not_input(path, option, inputs):
    for given in inputs or ():
        if given is not None and str(given) != "-" and _same_file(path, given):
            raise OutputError("%s %s is also an input (%s): writing it would destroy it; "
                              "write to another name" % (option, path, given))


def _check_writable_folder(folder, option, path):
    if not folder.exists():
        raise OutputError("%s %s: the folder %s does not exist; create it first (mkdir -p %s) "
                          "or give a path in an existing folder" % (option, path, folder, folder))
    if not folder.is_dir():
        raise OutputError("%s %s: %s is a file, not a folder; give a path in a folder"
                          % (option, path, folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError("%s %s: the folder %s is not writable; give a path in a folder you "
                          "can write to" % (option, path, folder))


def check_file(path, option, inputs=()):
    """Refuse, before any work, an output file vibrawatch could not write or must not."""
    path = Path(path)
    if path.is_dir():
        raise OutputError("%s %s is a folder; give a file name, e.g. %s"
                          % (option, path, path / "out" if path.name else "out"))
    _check_not_input(path, option, inputs)
    _check_writable_folder(path.resolve().parent, option, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError("%s %s exists and is read-only; give another name or make it "
                          "writable" % (option, path))
    return path


def check_folder(path, option, inputs=()):
    """Refuse, before any work, an output folder that cannot be created or written to."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError("%s %s is a file, not a folder; give a folder name" % (option, path))
    for given in inputs or ():
        if given is not None and Path(given).is_file() and _same_file(path, given):
            raise OutputError("%s %s is also an input; give another folder" % (option, path))
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError("%s %s: the folder is not writable; give a folder you can write "
                              "to" % (option, path))
        return path
    # It will be created: its nearest existing ancestor must be a writable folder.
    ancestor = path.resolve().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    _check_writable_folder(ancestor, option, path)
    return path


def make_folder(path, option):
    """Create an output folder checked by check_folder (a clean message if it still fails)."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError("%s %s: cannot create the folder (%s)" % (option, path, exc.strerror)) \
            from exc
    return Path(path)


@contextmanager
def atomic_path(path):
    """A unique temporary path beside ``path``; renamed onto it if the block completes.

    The writer fills the temporary file by name (for libraries that take a path); it is
    fsynced before the rename and the folder after it, so a power cut leaves the old file or
    the new one, never a mix."""
    path = Path(path)
    folder = path.resolve().parent
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError("cannot write %s (%s): give a path in a folder you can write to"
                          % (path, exc.strerror)) from exc
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; a new file is not
        yield Path(tmp)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    _fsync_folder(folder)


@contextmanager
def atomic_open(path, mode="w", newline="", commit_on_error=False, **kwargs):
    """An open file at a temporary name beside ``path``, renamed onto it when the block ends.

    With ``commit_on_error`` the file is put in place however the block ends (a log: what was
    written is complete as far as it goes); otherwise an error discards it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fh = open(tmp, mode, newline=newline if "b" not in mode else None, **kwargs)
        try:
            yield fh
        except BaseException:
            if not commit_on_error:
                fh.close()
                raise
            fh.flush()
            fh.close()
            _commit_now(tmp, path)
            raise
        fh.close()


def _commit_now(tmp, path):
    # A log kept despite an error: put it in place here (atomic_path will then find no tmp).
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_folder(Path(path).resolve().parent)


def write_bytes(path, data):
    """Write ``data`` to ``path`` atomically (see atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _fsync_file(name):
    try:
        fd = os.open(name, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot sync a folder; the rename is done anyway
        pass
    finally:
        os.close(fd)


def _unlink(name):
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
