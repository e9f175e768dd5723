"""`vibrawatch score` on the host and `vwatch.score_file` on the board give the same scores.

The board side runs for real under MicroPython's unix port with a 64 KB heap, precompiled as
`vibrawatch deploy` installs it, on the bundled real recordings and an int16 copy of one, for
a model with the full precision (format v1) and one with a PCA reduction (format v2).
"""

import csv

import numpy as np
import pytest
import scipy.io.wavfile

from test_cli import FAULTS, NORMAL, SMALL, vibrawatch
from vibrawatch import modelfile

SCORE_RTOL = 1e-3  # docs/features.md: relative to max(score, d)


PCA = 8  # components of the v2 model (of 45 features)


@pytest.fixture(scope="module", params=["full", "pca"])
def fitted(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("agree")
    model = folder / "adi.vwm"
    extra = ["--pca", str(PCA)] if request.param == "pca" else []
    vibrawatch("fit", NORMAL, "-o", model, *SMALL, *extra)
    assert modelfile.read(model).components == (PCA if extra else 0)
    rate, x = scipy.io.wavfile.read(FAULTS[0])
    pcm = folder / "outer_race_int16.wav"  # the int16 path: full scale 1.0 = 16 g here
    scipy.io.wavfile.write(pcm, rate, np.round(x / 16.0 * 32767).astype(np.int16))
    return model, [NORMAL, FAULTS[0], pcm]


def host_scores(model, wav, tmp_path):
    table = tmp_path / "host.csv"
    vibrawatch("score", model, wav, "--csv", table)
    return [(int(r["window"]), float(r["score"]), int(r["above"]))
            for r in csv.DictReader(open(table))]


def board_scores(interp, mpy, backend, model, wav):
    code = "import sys\nsys.path.insert(0, %r)\nimport vwatch\nvwatch.score_file(%r, %r, %r)"
    out = interp.run(code % (mpy, str(model), str(wav), backend), heap="72K")
    lines = out.splitlines()
    assert lines[0].startswith("# vwatch score_file v1 model=")
    assert "backend=%s" % backend in lines[0]
    rows = []
    for line in lines[1:]:
        if line.startswith("score,"):
            _, index, start, score, above = line.split(",")
            rows.append((int(index), int(start), float(score), int(above)))
    return rows


@pytest.mark.parametrize("which", [0, 1, 2], ids=["normal", "outer_race", "outer_race_int16"])
def test_board_and_host_scores_agree(device, precompiled_for, fitted, which, tmp_path):
    backend, interp = device
    model, wavs = fitted
    host = host_scores(model, wavs[which], tmp_path)
    board = board_scores(interp, precompiled_for(interp), backend, model, wavs[which])
    assert len(board) == len(host) == 155
    d = 45
    threshold = modelfile.read(model).threshold
    for (hi, hs, ha), (bi, start, bs, ba) in zip(host, board):
        assert bi == hi and start == hi * 256
        assert abs(bs - hs) <= SCORE_RTOL * max(hs, d), (hi, hs, bs)
        if abs(hs - threshold) > SCORE_RTOL * max(hs, d):  # decisions agree off the margin
            assert ba == ha, (hi, hs, bs, threshold)


def test_the_detector_scores_a_pca_model_as_the_host_does(micropython, device_mpy, tmp_path):
    # vwatch.run keeps a loaded model's fields without its loader (vwatch.start): the PCA
    # arrays must survive that, and the report lines carry the host's scores (%.4g).
    model = tmp_path / "pca.vwm"
    vibrawatch("fit", NORMAL, "-o", model, *SMALL, "--pca", str(PCA))
    rate, x = scipy.io.wavfile.read(FAULTS[0])
    pcm = tmp_path / "int16.wav"  # replayed exactly as stored
    scipy.io.wavfile.write(pcm, rate, np.round(x / 16.0 * 32767).astype(np.int16))
    code = ("import sys\nsys.path.insert(0, %r)\nimport vwatch\nfrom vwatch.replay import "
            "Replay\nvwatch.run(%r, Replay(%r, speed=0), backend='pure', windows=20)"
            % (device_mpy, str(model), str(pcm)))
    lines = micropython.run(code, heap="72K").splitlines()
    board = [float(ln.split(",")[2]) for ln in lines if ln.startswith("w,")]
    host = [s for _, s, _ in host_scores(model, pcm, tmp_path)][:20]
    assert len(board) == 20
    np.testing.assert_allclose(board, host, rtol=1e-3)
