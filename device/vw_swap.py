"""Finish or discard an interrupted vibrawatch deploy; main.py runs it before anything else.

`vibrawatch deploy` uploads the new version into /vw.new (code, model, main.py), checks every
file's sha256, and only then writes /vw.new/COMMIT. apply() moves a committed upload into
place and throws away an uncommitted one, so a deploy cut off at any point leaves either the
old version or the new one, never a mix. Every step checks before it acts: rerunning apply()
after a power cut in the middle of it completes the swap.

    import vw_swap
    vw_swap.apply()      # True if a new version was put in place
"""

import os

NEW = "/vw.new"
OLD = "/vw.old"
MODEL = "/model.vwm"
PREV = "/model.prev.vwm"  # the model before the last deploy: what fall_back() returns to
FAILED = "/model.failed.vwm"  # a model that could not start, set aside by fall_back()
# (path inside NEW, final place)
PLACES = (("/vwatch", "/lib/vwatch"), ("/model.vwm", "/model.vwm"), ("/main.py", "/main.py"))


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    """Remove a file or a whole folder."""
    if os.stat(path)[0] & 0x4000:
        for entry in os.ilistdir(path):
            _remove(path + "/" + entry[0])
        os.rmdir(path)
    else:
        os.remove(path)


def apply():
    """Put a committed upload in place, discard an uncommitted one; safe to run again."""
    if not _exists(NEW):
        return False
    if not _exists(NEW + "/COMMIT"):
        _remove(NEW)  # an upload that never finished: the old version stays
        return False
    if not _exists(OLD):
        os.mkdir(OLD)
    if not _exists("/lib"):
        os.mkdir("/lib")
    for staged, final in PLACES:
        if _exists(NEW + staged):
            if _exists(final):
                if _exists(OLD + staged):
                    _remove(OLD + staged)
                os.rename(final, OLD + staged)
            os.rename(NEW + staged, final)
    if _exists(OLD + "/model.vwm"):  # kept for fall_back(), before anything is removed
        if _exists(PREV):
            os.remove(PREV)
        os.rename(OLD + "/model.vwm", PREV)
    os.remove(NEW + "/COMMIT")
    _remove(NEW)
    _remove(OLD)
    return True


def _model_id(path):
    # A model file's id: its CRC-32 (the last 4 bytes, little-endian) as 8 hex digits.
    try:
        with open(path, "rb") as f:
            f.seek(-4, 2)
            b = f.read(4)
        return "%08x" % (b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24)
    except (OSError, IndexError):
        return "unreadable"


def fall_back(error):
    """After the detector failed at start-up with ``error``: set the model aside, put the
    previous one back, say so, and return the line printer that run() should use (it tags the
    start line with fallback=<failed id>); None when there is nothing to fall back to."""
    import sys
    import gc

    rt = sys.modules.get("vwatch.runtime")
    st = rt._state if rt else None
    if (st is not None and st.seq >= 0) or not _exists(PREV) or not _exists(MODEL):
        return None  # it ran windows (not a start-up failure), or no previous model
    failed = _model_id(MODEL)
    if _exists(FAILED):
        os.remove(FAILED)
    os.rename(MODEL, FAILED)
    os.rename(PREV, MODEL)
    print("vw1 warn model %s failed at start-up (%s: %s); running the previous model %s, "
          "the failed one is %s" % (failed, type(error).__name__, error, _model_id(MODEL),
                                    FAILED))
    gc.collect()
    tag = " fallback=" + failed

    def out(line):
        if line.startswith("vw1 start"):
            line += tag
        print(line)

    return out
