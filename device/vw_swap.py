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
    os.remove(NEW + "/COMMIT")
    _remove(NEW)
    _remove(OLD)
    return True
