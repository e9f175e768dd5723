"""Nothing lost, no silent wrong number: the real `vibrawatch` command under a user's slips.

Outputs (atomic, never an input, checked before work), option validation before work, every
input format against its WAV twin (and against the board's WAV reader), NaN and infinity on
the host and every board backend.
"""

import csv
import os
import struct
import time

import numpy as np
import pytest
import scipy.io.wavfile

from test_cli import FAULTS, NORMAL, SMALL, refused, vibrawatch
from vibrawatch import fitting, outputs, recordings


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("robust") / "adi.vwm"
    vibrawatch("fit", NORMAL, "-o", path, *SMALL)
    return path


def snapshot(folder):
    """Every file in a folder with its bytes: what a refused command must leave as it was."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- outputs: never an input, checked before work, replaced only by a complete file ---------

def test_an_output_that_is_an_input_is_refused_and_nothing_is_touched(model, tmp_path):
    rec = tmp_path / "rec.wav"
    rec.write_bytes(NORMAL.read_bytes())
    own = tmp_path / "m.vwm"
    own.write_bytes(model.read_bytes())
    before = snapshot(tmp_path)
    for args in (("score", own, rec, "--csv", rec), ("score", own, rec, "--csv", own),
                 ("fit", rec, "-o", rec), ("fit", rec, "-o", tmp_path / "." / "rec.wav")):
        assert "is also an input" in refused(*args)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("where", ["missing", "readonly", "folder"])
def test_output_paths_are_checked_before_any_work(model, tmp_path, where):
    if where == "readonly" and os.geteuid() == 0:
        pytest.skip("running as root: a read-only folder is writable to root")
    locked = tmp_path / "locked"
    locked.mkdir()
    if where == "missing":
        target, words = tmp_path / "nowhere" / "out", "does not exist"
    elif where == "readonly":
        locked.chmod(0o555)
        target, words = locked / "out", "not writable"
    else:
        target, words = locked, "is a folder"
    started = time.monotonic()
    cases = [
        ("fit", NORMAL, "-o", str(target) + ".vwm" if where != "folder" else target),
        ("score", model, NORMAL, "--csv", str(target) + ".csv" if where != "folder" else target),
        ("monitor", "--port", "/dev/nonexistent-port", "--csv",
         str(target) + ".csv" if where != "folder" else target),
        ("record", "--port", "/dev/nonexistent-port", "--seconds", "5", "-o",
         str(target) + ".wav" if where != "folder" else target),
    ]
    for args in cases:
        message = refused(*args)
        assert words in message and ("-o" in message or "--csv" in message), message
    assert time.monotonic() - started < 60  # refused at once: no fit, no recording
    if where == "readonly":  # output folders: a missing one is created (mkdir -p), so no case
        assert "--report" in refused("evaluate", model, "--normal", NORMAL, "--report",
                                     target / "sub")
        assert "--out" in refused("demo", "--out", target)
        assert "--fs" in refused("emulate", "--fs", target)
    elif where == "folder":
        plain = tmp_path / "plain.txt"
        plain.write_text("not a folder")
        assert "is a file, not a folder" in refused("evaluate", model, "--normal", NORMAL,
                                                     "--report", plain)
        assert "is a file, not a folder" in refused("emulate", "--fs", plain)
        assert "is a file, not a folder" in refused("demo", "--out", plain)
        assert "is a file, not a folder" in refused("demo", "--out", plain / "inside")
        assert plain.read_text() == "not a folder"


def test_a_score_that_fails_midway_keeps_the_old_table_and_leaves_no_temporary(model,
                                                                              tmp_path):
    table = tmp_path / "scores.csv"
    table.write_text("the old table\n")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt \x02\x00")
    refused("score", model, NORMAL, broken, "--csv", table)
    assert table.read_text() == "the old table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.wav", "scores.csv"]
    # A complete run replaces it, with the permissions a new file gets.
    vibrawatch("score", model, NORMAL, "--csv", table)
    assert table.read_text().startswith("file,window,start_s,score,above,flags")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.wav", "scores.csv"]
    mask = os.umask(0)
    os.umask(mask)
    assert table.stat().st_mode & 0o777 == 0o666 & ~mask


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "model.vwm"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with outputs.atomic_path(target) as tmp:
            tmp.write_bytes(b"half a ne")
            raise RuntimeError("the writer died")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.vwm"]


def test_fit_replaces_a_model_only_when_complete(tmp_path):
    model = tmp_path / "m.vwm"
    model.write_bytes(b"the previous model")
    refused("fit", NORMAL, "-o", model, "--window", "512", "--bands", "12",
            "--estimator", "empirical", "--holdout", "0.999")  # fails in the fit itself
    assert model.read_bytes() == b"the previous model"
    assert os.listdir(tmp_path) == ["m.vwm"]


# -- every option and combination, before work ----------------------------------------------

FIT_CASES = [
    (["--hop", "0"], "--hop 0", "--hop 512"),
    (["--hop", "-4"], "--hop -4", "--hop 512"),
    (["--rate", "0"], "--rate 0", "--rate 20000"),
    (["--rate", "-1"], "--rate -1", "--rate 20000"),
    (["--rate", "1e40"], "--rate 1e+40", "--rate 20000"),
    (["--rate", "nan"], "--rate nan", "--rate 20000"),
    (["--alarm-k", "6", "--alarm-n", "5"], "--alarm-k 6", "--alarm-k 3"),
    (["--alarm-n", "300"], "--alarm-n 300", "--alarm-n 5"),
    (["--alarm-k", "0"], "--alarm-k 0", "--alarm-k 3"),
    (["--bands", "300"], "--bands 300", "--bands 16"),
    (["--window", "512", "--bands", "256"], "--bands 256", "--bands 16"),
    (["--window", "1000"], "--window 1000", "--window 1024"),
    (["--holdout", "1.5"], "--holdout 1.5", "--holdout 0.25"),
    (["--false-alarms-per-hour", "-2"], "--false-alarms-per-hour -2", "1"),
    (["--pca", "0"], "--pca 0", "--pca 8"),
    (["--channels", "0,1,2,3,4,5,6,7,8"], "--channels", "--channels 0,1,2"),
    (["--cost-miss", "inf", "--cost-false-alarm", "1", "--anomalous", str(FAULTS[0])],
     "--cost-miss inf", "--cost-miss 100"),
    (["--cost-miss", "100", "--cost-false-alarm", "nan", "--anomalous", str(FAULTS[0])],
     "--cost-false-alarm nan", "--cost-false-alarm 100"),
    (["--cost-miss", "100"], "--cost-false-alarm", "e.g. 100 and 1"),
    (["--shaft-hz", "0"], "--shaft-hz 0", "--shaft-hz 10"),
    (["--rpm", "nan"], "--rpm nan", "--rpm 600"),
    (["--rpm", "600", "--zoom", "off"], "--rpm 600", "drop one of them"),
    (["--rpm", "600", "--shaft-hz", "10"], "--shaft-hz 10 and --rpm 600", "--rpm 600"),
]


@pytest.mark.parametrize("extra,names,works", FIT_CASES, ids=[" ".join(c[0][:2]) for c in
                                                            FIT_CASES])
def test_fit_refuses_bad_options_before_fitting_naming_the_option(extra, names, works,
                                                                   tmp_path):
    out = tmp_path / "m.vwm"
    started = time.monotonic()
    message = refused("fit", NORMAL, "-o", out, *extra)
    assert names in message and works in message, message
    assert "re-export" not in message and "Traceback" not in message
    assert not out.exists() and time.monotonic() - started < 20  # no fit ran


# fit's settings have one check (fitsettings.ALLOWED): fitting.fit, called from Python,
# refuses what the command line refuses, in the same words, before any work.
LIBRARY_CASES = [
    (dict(hop=0), ["--hop", "0"]),
    (dict(window=1000), ["--window", "1000"]),
    (dict(bands=300), ["--bands", "300"]),
    (dict(holdout=1.5), ["--holdout", "1.5"]),
    (dict(alarm_k=6), ["--alarm-k", "6"]),
    (dict(false_alarms_per_hour=-2.0), ["--false-alarms-per-hour", "-2"]),
    (dict(pca=0), ["--pca", "0"]),
    (dict(cost_miss=100.0), ["--cost-miss", "100"]),
    (dict(zoom="off", shaft_hz=5.0), ["--zoom", "off", "--shaft-hz", "5"]),
    (dict(epsilon=-1.0), ["--epsilon", "-1"]),
]


@pytest.mark.parametrize("settings,argv", LIBRARY_CASES,
                         ids=[" ".join(c[1][:2]) for c in LIBRARY_CASES])
def test_fit_from_python_refuses_what_the_command_line_refuses(settings, argv, tmp_path):
    with pytest.raises(fitting.FitError) as refusal:
        fitting.fit([recordings.load(NORMAL)], fitting.FitSettings(**settings))
    message = refused("fit", NORMAL, "-o", tmp_path / "m.vwm", *argv)
    assert message == "vibrawatch: error: %s\n" % refusal.value


def test_the_suggested_values_work(tmp_path):
    # The values the messages suggest are accepted (a quick fit with each).
    vibrawatch("fit", NORMAL, "-o", tmp_path / "m.vwm", "--window", "512", "--hop", "256",
               "--bands", "12", "--alarm-k", "3", "--alarm-n", "5", "--rate", "20000")


def test_other_commands_refuse_bad_options(model, tmp_path):
    fault = FAULTS[0]
    assert "--onset -1" in refused("evaluate", model, "--anomalous", fault, "--onset", "-1")
    message = refused("evaluate", model, "--anomalous", fault, "--onset", "100")
    assert "--onset 100" in message and "lasts 2.000 s" in message
    assert "--anomalous" in refused("evaluate", model, "--normal", NORMAL, "--onset", "1")
    assert "--heap bogus" in refused("emulate", "--heap", "bogus", "--fs", tmp_path / "fs")
    assert "--heap 128K" in refused("emulate", "--heap", "1K", "--fs", tmp_path / "fs")
    table = tmp_path / "x.csv"
    table.write_text("t,x\n0,1\n")
    assert "WAV" in refused("emulate", "--replay", table, "--fs", tmp_path / "fs")
    assert not (tmp_path / "fs").exists()
    assert "--windows 0" in refused("monitor", "--port", "/dev/null", "--windows", "0")
    assert "--timeout 0" in refused("monitor", "--port", "/dev/null", "--timeout", "0")
    assert "--rate 0" in refused("score", model, NORMAL, "--rate", "0")


@pytest.mark.parametrize("seconds", ["0", "-1", "nan"])
def test_record_refuses_a_bad_duration_and_keeps_the_old_recording(tmp_path, seconds):
    old = tmp_path / "rec.wav"
    old.write_bytes(NORMAL.read_bytes())
    message = refused("record", "--port", "/dev/nonexistent-port", "--seconds", seconds,
                      "-o", old)
    assert "--seconds" in message and "--seconds 10" in message
    assert old.read_bytes() == NORMAL.read_bytes()


# -- every input format: the numbers of its WAV twin, or a clear refusal ----------------------

def wav_bytes(x, rate=20000, data_len=None, riff_len=None):
    """A float32 WAV's bytes with the data chunk's (and RIFF's) size fields as given."""
    pcm = np.asarray(x, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, x.shape[1], rate, rate * 4 * x.shape[1], 4 * x.shape[1], 32)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
            + struct.pack("<I", len(pcm) if data_len is None else data_len) + pcm)
    return b"RIFF" + struct.pack("<I", len(body) if riff_len is None else riff_len) + body


def score_rows(model, path, tmp_path, *extra):
    table = tmp_path / (path.name + ".scores.csv")
    vibrawatch("score", model, path, "--csv", table, *extra)
    return [(r["window"], r["score"], r["above"], r["flags"]) for r in
            csv.DictReader(open(table))]


def test_every_format_scores_as_its_wav_twin(model, tmp_path):
    x = np.asarray(recordings.load(FAULTS[0]).samples[:12000], np.float32)
    twin = tmp_path / "twin.wav"
    scipy.io.wavfile.write(twin, 20000, x)
    want = score_rows(model, twin, tmp_path)
    assert len(want) > 40
    npy, npz, table = tmp_path / "x.npy", tmp_path / "x.npz", tmp_path / "x.csv"
    np.save(npy, x.astype(np.float64))  # float64 is read as the float32 a WAV holds
    np.savez(npz, data=x, rate=np.float64(20000))
    with open(table, "w") as fh:
        fh.write("time,x,y,z\n")
        for i, row in enumerate(x):
            fh.write("%r,%r,%r,%r\n" % (i / 20000, float(row[0]), float(row[1]), float(row[2])))
    truncated = tmp_path / "truncated.wav"  # a copy cut short: data size says more than there is
    truncated.write_bytes(wav_bytes(np.r_[x, x])[: len(wav_bytes(x))])
    streaming = tmp_path / "streaming.wav"  # a streaming writer's placeholder sizes
    streaming.write_bytes(wav_bytes(x, data_len=0xFFFFFFFF, riff_len=0xFFFFFFFF))
    assert score_rows(model, npy, tmp_path, "--rate", "20000") == want
    assert score_rows(model, npz, tmp_path) == want
    assert score_rows(model, table, tmp_path) == want
    assert score_rows(model, truncated, tmp_path) == want
    assert score_rows(model, streaming, tmp_path) == want
    pcm = np.round(np.clip(x / 16, -1, 1) * 32767).astype(np.int16)
    scipy.io.wavfile.write(tmp_path / "pcm.wav", 20000, pcm)
    np.save(tmp_path / "pcm.npy", pcm)  # int16 arrays are PCM, as in a WAV
    assert (score_rows(model, tmp_path / "pcm.npy", tmp_path, "--rate", "20000")
            == score_rows(model, tmp_path / "pcm.wav", tmp_path))


def test_unusable_recordings_are_refused_with_a_message(model, tmp_path):
    cases = {}
    np.save(tmp_path / "empty.npy", np.zeros((0, 3), np.float32))
    cases["empty.npy"] = "holds no samples"
    (tmp_path / "zero.npy").write_bytes(b"")
    cases["zero.npy"] = "not a readable NumPy file"
    np.savez(tmp_path / "ratearray.npz", data=np.zeros((4000, 3), np.float32),
             rate=np.array([20000.0, 20000.0]))
    cases["ratearray.npz"] = "not one number"
    np.savez(tmp_path / "ratezero.npz", data=np.zeros((4000, 3), np.float32), rate=0)
    cases["ratezero.npz"] = "not a positive sample rate"
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 8)
    cases["binary.csv"] = "not a text CSV file"
    (tmp_path / "ragged.csv").write_text("time,x\n0,1\n0.1\n")
    cases["ragged.csv"] = "unreadable CSV row"
    x = np.zeros((4000, 3), np.float32)
    (tmp_path / "rate0.wav").write_bytes(wav_bytes(x, rate=0))
    cases["rate0.wav"] = "sample rate is 0 Hz"
    (tmp_path / "int32.wav").write_bytes(wav_bytes(x).replace(b"\x03\x00\x03\x00", b"\x01\x00"
                                                                 b"\x03\x00", 1))
    cases["int32.wav"] = "sample format 1 with 32 bits"
    for name, words in cases.items():
        rate = ["--rate", "20000"] if name.endswith(".npy") else []
        message = refused("score", model, tmp_path / name, *rate)
        assert name in message and words in message, message


def with_chunk_before_data(blob, cid, body):
    """A 44-byte WAV's bytes with one more chunk between fmt and data."""
    chunk = cid + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)
    out = blob[:36] + chunk + blob[36:]
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


# Each recording as vwatch.wav.Wav reads it, then as the replay sensor does: its own reading
# of the plain 44-byte header, vwatch.wav's parser for any other (and to refuse).
READ_HEADERS = """
import os, sys
from vwatch.replay import Replay
folder = %r
for name in sorted(os.listdir(folder)):
    sys.modules.pop('vwatch.wav', None)
    try:
        r = Replay(folder + '/' + name, speed=0)
        print(name, 'replay', int(r.rate), r.channels, r.frames, r._data, r._align, r._float,
              'vwatch.wav' in sys.modules)
        r.close()
    except ValueError as e:
        print(name, 'replay refused')
    from vwatch.wav import Wav
    try:
        w = Wav(folder + '/' + name)
        print(name, 'ok', w.rate, w.channels, w.frames)
        print(name, 'wav', w.rate, w.channels, w.frames, w._data, w._align, w.kind == 'f')
        w.close()
    except ValueError as e:
        print(name, 'refused')
        print(name, 'wav refused')
"""


def test_host_and_board_read_the_same_wav_headers(micropython, tmp_path):
    x = (np.arange(3000 * 3, dtype=np.float32).reshape(3000, 3) % 97) / 97
    pcm = tmp_path / "pcm.wav"
    scipy.io.wavfile.write(pcm, 20000, np.round(x[:, :2] * 30000).astype(np.int16))
    files = {
        "plain.wav": wav_bytes(x),
        "pcm.wav": pcm.read_bytes(),
        "list_chunk.wav": with_chunk_before_data(wav_bytes(x), b"LIST", b"INFOodd"),
        "truncated.wav": wav_bytes(np.r_[x, x])[: len(wav_bytes(x)) - 10],
        "streaming.wav": wav_bytes(x, data_len=0xFFFFFFFF, riff_len=0xFFFFFFFF),
        "zero_length.wav": wav_bytes(x, data_len=0),
        "rate0.wav": wav_bytes(x, rate=0),
        "nine_channels.wav": wav_bytes(np.zeros((10, 9), np.float32)),
        "no_data.wav": wav_bytes(x)[:44 - 8],
    }
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    lines = micropython.run(READ_HEADERS % str(tmp_path)).splitlines()
    board = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines
             if line.split()[1] in ("ok", "refused")}
    # the replay sensor agrees with Wav field for field, and loads vwatch.wav's parser only
    # for a header other than the plain 44 bytes (or to say what is wrong with it)
    replay = {line.split()[0]: line.split()[2:] for line in lines if line.split()[1] == "replay"}
    wav = {line.split()[0]: line.split()[2:] for line in lines if line.split()[1] == "wav"}
    assert sorted(replay) == sorted(wav) == sorted(files)
    for name in files:
        if wav[name] == ["refused"]:
            assert replay[name] == ["refused"], name
        else:
            assert replay[name][:-1] == wav[name], name
            plain = name not in ("list_chunk.wav",)
            assert replay[name][-1] == ("False" if plain else "True"), name
    assert wav["list_chunk.wav"][3] == str(44 + 8 + 8)  # its data after the LIST chunk
    for name in files:
        try:
            rec = recordings.load(tmp_path / name)
            host = "ok %d %d %d" % (rec.rate, rec.channels, rec.frames)
        except recordings.RecordingError as exc:
            host = "refused"
            message = str(exc)
            assert name in message
        if name == "nine_channels.wav":  # the host picks channels (--channels); the board not
            assert host == "ok 20000 9 10" and board[name] == "refused"
        elif name == "zero_length.wav":  # the board reads 0 frames; the host says so
            assert host == "refused" and board[name] == "ok 20000 3 0"
        else:
            assert host == board[name], (name, host, board[name])
    assert board["truncated.wav"] == "ok 20000 3 %d" % ((len(wav_bytes(x)) - 10 - 44) // 12)


# -- NaN and infinity: not scored and flagged, on the host and every backend -----------------

@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    """A faulty recording with a NaN in window 3's frames and an infinity in window 9's."""
    x = np.array(recordings.load(FAULTS[0]).samples[:8000], np.float32)
    x[3 * 256 + 400, 1] = np.nan
    x[9 * 256 + 300, 0] = np.inf
    path = tmp_path_factory.mktemp("nan") / "poisoned.wav"
    scipy.io.wavfile.write(path, 20000, x)
    return path


def windows_touching(frame, hop=256, n=512):
    return {w for w in range(frame // hop + 1) if w * hop <= frame < w * hop + n}


def test_host_does_not_score_nonfinite_windows_and_flags_them(model, poisoned, tmp_path):
    bad = windows_touching(3 * 256 + 400) | windows_touching(9 * 256 + 300)
    table = tmp_path / "s.csv"
    out = vibrawatch("score", model, poisoned, "--csv", table).stdout
    rows = list(csv.DictReader(open(table)))
    assert {int(r["window"]) for r in rows if r["score"] == "nan"} == bad
    for r in rows:
        if int(r["window"]) in bad:
            assert (r["above"], r["flags"]) == ("0", "2")
        else:
            assert float(r["score"]) > 0 and int(r["flags"]) == int(r["above"])
    assert "%d windows not scored" % len(bad) in out and "?" in out
    # Without --csv it prints the summary too, NaN windows included.
    assert "windows not scored" in vibrawatch("score", model, poisoned).stdout


def board_rows(interp, backend, model, wav, mpy=None):
    code = ("import sys\n%simport vwatch\nvwatch.score_file(%r, %r, %r)"
            % ("sys.path.insert(0, %r)\n" % mpy if mpy else "", str(model), str(wav), backend))
    out = interp.run(code, heap="128K")
    return [line.split(",")[1:] for line in out.splitlines() if line.startswith("score,")]


@pytest.mark.parametrize("backend", ["pure", "q15"])
def test_board_backends_do_not_score_nonfinite_windows(micropython, device_mpy, model,
                                                       poisoned, tmp_path, backend):
    table = tmp_path / "s.csv"
    vibrawatch("score", model, poisoned, "--csv", table)
    host = {int(r["window"]): r for r in csv.DictReader(open(table))}
    rows = board_rows(micropython, backend, model, poisoned, device_mpy)
    assert len(rows) == len(host)
    for index, _start, score, above in rows:
        want = host[int(index)]
        if want["score"] == "nan":
            assert (score, above) == ("nan", "0"), (backend, index, score)
        else:
            assert score != "nan" and above == want["above"], (backend, index, score)


def test_ulab_backend_does_not_score_nonfinite_windows(micropython_ulab, model, poisoned,
                                                       tmp_path):
    table = tmp_path / "s.csv"
    vibrawatch("score", model, poisoned, "--csv", table)
    host = {int(r["window"]): r["score"] for r in csv.DictReader(open(table))}
    rows = board_rows(micropython_ulab, "ulab", model, poisoned)
    assert {int(i) for i, _, s, a in rows if s == "nan" and a == "0"} == \
        {w for w, s in host.items() if s == "nan"}


# -- the model knows the channels it was fitted on; its body is checked before its version ----

def test_scoring_other_channels_than_the_model_was_fitted_on_is_refused(tmp_path):
    model = tmp_path / "c0.vwm"
    vibrawatch("fit", NORMAL, "-o", model, "--channels", "0", *SMALL)
    from vibrawatch import modelfile

    assert modelfile.read(model).input_channels == (0,)
    table = tmp_path / "s.csv"
    message = refused("score", model, NORMAL, "--channels", "1", "--csv", table)
    assert "--channels 1" in message and "fitted on input channels 0" in message
    assert "--channels-override" in message and not table.exists()
    assert "--channels-override" in refused("evaluate", model, "--normal", NORMAL,
                                            "--channels", "2")
    # Without --channels the model's own are used: the normal data stay below the threshold.
    vibrawatch("score", model, NORMAL, "--csv", table)
    assert sum(int(r["above"]) for r in csv.DictReader(open(table))) == 0
    # Asked for explicitly, other channels are scored (and here they alarm, as they would).
    vibrawatch("score", model, NORMAL, "--channels", "1", "--channels-override", "--csv", table)
    assert sum(int(r["above"]) for r in csv.DictReader(open(table))) > 100


def test_a_model_whose_body_is_noise_is_corrupt_on_host_and_board(micropython, model, tmp_path):
    rng = np.random.default_rng(7)
    noise = tmp_path / "noise.vwm"
    noise.write_bytes(b"VWMF" + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes())
    message = refused("info", noise)
    assert "the file is corrupt" in message and "version" not in message
    code = ("from vwatch.model import load\ntry:\n load(%r)\nexcept ValueError as e:\n print(e)"
            % str(noise))
    board = micropython.run(code).strip()
    assert "the file is corrupt" in board and "version" not in board
    # A genuine newer file (its CRC right) is still "newer": upgrade.
    newer = bytearray(model.read_bytes())
    newer[4] = 9
    import zlib

    struct.pack_into("<I", newer, len(newer) - 4, zlib.crc32(bytes(newer[:-4])))
    (tmp_path / "newer.vwm").write_bytes(bytes(newer))
    assert "version 9" in refused("info", tmp_path / "newer.vwm")


def test_emulate_never_replaces_a_file_of_the_users_with_its_link(tmp_path):
    mine = tmp_path / "vboard"
    mine.write_text("my notes\n")
    assert "--link" in refused("emulate", "--link", mine, "--fs", tmp_path / "fs")
    assert "--link" in refused("emulate", "--link", tmp_path / "nowhere" / "vb", "--fs",
                               tmp_path / "fs")
    assert mine.read_text() == "my notes\n" and not (tmp_path / "fs").exists()


def test_evaluate_with_nothing_to_evaluate_is_refused_before_work(model):
    assert "nothing to evaluate" in refused("evaluate", model)


def test_demo_never_removes_a_board_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "board-fs"
    mine.mkdir()
    (mine / "main.py").write_text("my board's program\n")
    assert "did not make" in refused("demo", "--out", tmp_path)
    assert (mine / "main.py").read_text() == "my board's program\n"


def test_evaluate_report_never_overwrites_an_input(model, tmp_path):
    own = tmp_path / "report.md"  # an input that happens to share a report file's name
    own.write_bytes(model.read_bytes())
    assert "is also an input" in refused("evaluate", own, "--normal", NORMAL, "--report",
                                         tmp_path)
    assert own.read_bytes() == model.read_bytes()
