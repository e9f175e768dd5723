"""Learning on the board: templates, and `vibrawatch learn` (vwatch.learn run over mpremote).

A template is a model file with the settings and nothing learned: 0 training windows, mu = 0,
L = I, epsilon 1 (the board measures its own), and in the threshold field the false-alarm
budget per hour the board calibrates its threshold for (docs/model-format.md, "Templates").

    model = template(FitSettings(window=1024, hop=512, bands=12), rate=20000, channels=8)
    model.write("seed.template.vwm")
    learned = learn_on_board(Board("/dev/ttyACM0"), 600, model, print)
"""

import time

import numpy as np

from . import features as F
from . import modelfile
from .errors import VibrawatchError
from .fitting import FitSettings
from .thresholds import DEFAULT_FALSE_ALARMS_PER_HOUR

TEMPLATE_BANDS = 16  # bands per channel when none are given (fit's automatic maximum)
REMOTE_TEMPLATE = "/template.vwm"


class LearnError(VibrawatchError):
    pass


def template(settings, rate, channels):
    """A template Model from fit's options (settings.bands None: TEMPLATE_BANDS)."""
    if settings.pca:
        raise LearnError("--pca: the board learns the full model (packed Cholesky factor); "
                         "leave --pca out")
    if not rate or rate <= 0 or not channels or channels < 1:
        raise LearnError("a template needs the sample rate and the channel count: give --rate "
                         "and --channels (e.g. --rate 20000 --channels 8)")
    bands = settings.bands or TEMPLATE_BANDS
    edges = F.default_band_edges(settings.window, bands, settings.layout)
    d = channels * (bands + len(F.stat_bits(settings.stats)))
    budget = settings.false_alarms_per_hour or DEFAULT_FALSE_ALARMS_PER_HOUR
    eye = np.concatenate([np.eye(d)[j:, j] for j in range(d)]).astype(np.float32)
    return modelfile.Model(
        sample_rate=float(rate), window=settings.window, hop=settings.hop, channels=channels,
        edges=edges, stats=settings.stats, epsilon=1.0, mu=np.zeros(d, np.float32),
        packed_l=eye, threshold=float(budget), clear_threshold=float(budget),
        alarm_k=settings.alarm_k, alarm_n=settings.alarm_n, estimator="oas", n_train=0,
        created=int(time.time()))


def is_template(model):
    return model.n_train == 0


def default_settings(window=1024, hop=None, **kw):
    return FitSettings(window=window, hop=hop or window // 2, **kw)


def board_sensor(board):
    """(rate, channels) of the board's default sensor (the emulated board's replay)."""
    out = board.exec("from vwatch import runtime\ns = runtime.default_sensor()\n"
                     "print(s.rate, s.channels)\ns.close()")
    rate, channels = out.split()
    return float(rate), int(channels)


def learn_on_board(board, seconds, tpl, say=print, remote_model="/model.vwm", backend=None,
                   idle_timeout=60.0):
    """Copy the template to the board, run vwatch.learn there (its progress lines go to
    ``say``), copy the learned model back; return it (a modelfile.Model).

    LearnError when the board refuses (the plausibility check, too short, a silent sensor):
    the board's model file is unchanged then."""
    board.put(tpl.to_bytes(), REMOTE_TEMPLATE)
    lines = []

    def on_line(line):
        lines.append(line)
        say(line)

    code = ("import vwatch\nvwatch.learn(%r, model=%r, backend=%r, template=%r, start=False)"
            % (float(seconds), remote_model, backend, REMOTE_TEMPLATE))
    try:
        board.exec_stream(code, on_line, idle_timeout=idle_timeout)
    except KeyboardInterrupt:
        board.interrupt()
        raise
    saved = [ln for ln in lines if ln.startswith("vw1 learn saved")]
    if not saved:
        why = [ln for ln in lines if ln.startswith(("vw1 learn refused", "vw1 learn error",
                                                   "vw1 learn interrupted"))]
        raise LearnError("the board did not learn a model: %s"
                         % (why[-1][4:] if why else "it printed no result line"))
    blob = board.get(remote_model)
    model = modelfile.from_bytes(blob, "%s on the board" % remote_model)
    want = saved[-1].split("model=")[1].split()[0]
    if model.model_id != want:
        raise LearnError("%s on the board is model %s, but learning saved %s: read it again"
                         % (remote_model, model.model_id, want))
    return model
