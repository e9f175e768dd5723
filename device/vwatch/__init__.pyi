"""vwatch: vibration anomaly scoring on a MicroPython board (the device side of vibrawatch).

Types and costs of the calls a board user makes; editors read this file for completion
(README "Editor completion on the board"). The sensors are in their own modules, each
documented in its docstring and in docs/sensors.md (memory, FIFO, rates):
vwatch.replay.Replay(path, speed=1.0, loop=False) in the core, and the drivers of the
vwatch.sensors subpackage (an install of its own: device/vwatch/sensors/package.json):
vwatch.sensors.lsm9ds1.LSM9DS1, vwatch.sensors.bmi270.BMI270, vwatch.sensors.mpu6050.MPU6050,
vwatch.sensors.adxl345.ADXL345, vwatch.sensors.lis3dh.LIS3DH (all (i2c, address=...,
rate=..., range_g=...)) and vwatch.sensors.adc.Analog(adc, rate=1000, ...); every one a
vwatch.sensor.Sensor. Editors read the drivers from their sources, as before the move (no
stubs; vwatch/sensors/__init__.py holds no code).

Costs below: N window, hop, C channels, B bands, d features (docs/features.md). Times were
measured on the unix port of a 2-core x86-64 machine (pure backend): a microcontroller is
tens of times slower; scale by N log2 N per channel plus d^2/2 for the score (d(p + 2) for a
model with p PCA components, format v2).
"""

from typing import Callable

from .sensor import Sensor
from .wav import Wav

__version__: str

class Model:
    """A loaded model (vwatch.model.load fills one): the fields of docs/model-format.md and
    its arrays; run() and learn() use it as it is."""

    version: int
    size: int
    rate: float
    window: int
    p: int
    hop: int
    channels: int
    bands: int
    stats: int
    estimator: int
    d: int
    alarm_k: int
    alarm_n: int
    eps: float
    threshold: float
    clear: float
    n_train: int
    created: int
    crc: int
    model_id: str
    edges: object
    comps: tuple
    mu: object
    lp: object
    w: object
    a: object
    g: object
    zoom_r: int
    zoom_bands: int
    zoom_window: int
    flags: int
    k: int
    zoom_edges: object
    channel_map: object
    v3: bool

class _Features:
    name: str  # 'pure', 'ulab' or 'q15'
    f: object  # the last window's d features, array('f')
    def compute(self, source: Wav | object, start: int) -> object: ...
    def score(self) -> float: ...

def backend_class(backend: str | None = None) -> type[_Features]:
    """The Features class of 'pure', 'ulab', 'q15', or None/'auto' (ulab when it imports,
    else q15 when the MCU has no FPU (vwatch.fpu.has_fpu), else pure). Allocates nothing;
    imports backend_pure, backend_ulab or backend_q15 (a few KB of heap for the code)."""

def features(model: Model, backend: str | None = None) -> _Features:
    """A feature backend for ``model`` with every buffer allocated now: pure 5N + 8d bytes
    (window, sine table, features) plus its kernels' code (about 5 KB on 64-bit); ulab 3N
    floats and a view per band; q15 4.5N + 12B + 20d (+ 8p) bytes + 1.5 KB of tables.
    Nothing more is allocated per window but boxed floats, and q15 allocates nothing at all
    (its score() boxes the one float it returns; mahal() leaves it in fe.sv[0])."""

def check_source(source: Sensor | Wav, model: Model, frames: int | None = None) -> None:
    """Raise ValueError unless ``source`` delivers the model's channels at its rate (0.5 %)
    and, given ``frames``, holds one window. The one check of run(), learn() and score_file():
    it loads vwatch.source_check and drops it after."""

def check_recording(model: Model, wav: Wav) -> None:
    """check_source(wav, model, wav.frames)."""

def score_file(model_path: str, wav_path: str, backend: str | None = None) -> int:
    """Score every window of a WAV file, print one line per window (docs/score-lines.md);
    return the number of windows. Allocates the model (2(B+1) + 4d + 2d(d+1) bytes, or
    2(B+1) + 8d + 4p(d+1) with p PCA components), the backend's buffers (see features) and
    a 1 KB read buffer, all freed on return.
    N=512, C=3, d=45: about 10 ms a window on the unix port (13 KB of heap in all);
    N=256, C=3, d=24: about 4 ms."""

def run(
    model: str | Model = "/model.vwm",
    sensor: Sensor | None = None,
    backend: str | None = None,
    speed: float = 1.0,
    windows: int | None = None,
    out: Callable[[str], object] = ...,
    report: object | None = None,
) -> int:
    """Run the detector until Ctrl-C, stop(), ``windows`` windows or the end of a replay;
    print the lines of docs/protocol.md through ``out``; return the windows reported.
    Without a sensor it replays /replay.wav at ``speed``. Allocates everything before the
    first window: the ring (2C(N + min(hop, N, max(256, the sensor's FIFO frames))) bytes,
    first), the model, the backend's buffers (see features) and the alarm's history; all of
    it is kept when run() returns, for a next run() on the same model file, backend and
    sensor scale, which reuses it (release() lets it go); per window only the report line
    (about 25 bytes) and boxed floats. A window's work is score_file's; the rest of the time
    the loop polls the sensor. A MemoryError names the bytes needed and the bytes free.
    ``report``: None reports over MQTT when /vwatch.json has an "mqtt" section (vwatch.mqtt,
    docs/mqtt.md: umqtt.simple's code, a socket, 17 bytes per queued alarm event, 4 per
    window of a summary; at most the hop's time less the window's work spent on the network
    per window); False never; an object: its window(state) is called after every window."""

def status() -> object:
    """Print (and return) the state of the current or last run: seq, score, alarm, flags,
    dropped, errors, the microseconds of the last window, heap free and used. Runs one
    gc.collect() (milliseconds on a large heap); allocates the printed line."""

def release() -> None:
    """Let the buffers a finished run() keeps go: its ring, model arrays, backend buffers and
    code. run() keeps them so that a next run() on the same model file (same size and CRC),
    backend and sensor scale allocates nothing big; score_file(), record() and learn() call
    this first."""

def stop() -> None:
    """Ask a running run() to stop after its current window; only sets a flag, so it may be
    called from a Timer callback or another thread. Allocates nothing."""

def record(seconds: float, sensor: Sensor | None = None, burst: int = 64) -> int:
    """Print ``seconds`` of raw samples as checked bursts for `vibrawatch record`
    (docs/protocol.md "Recording"); return the frames sent. Without a sensor it replays
    /replay.wav in real time. Allocates one burst buffer (2C x burst bytes) and, per burst,
    its base64 line (about 2.7 x its bytes, short-lived). Runs for ``seconds`` (a replay
    ending earlier stops it)."""

def learn(
    seconds: float,
    model: str | None = "/model.vwm",
    sensor: Sensor | None = None,
    backend: str | None = None,
    out: Callable[[str], object] = ...,
    template: str | None = None,
    speed: float = 1.0,
    start: bool = True,
    false_alarms_per_hour: float | None = None,
    compensate: bool = True,
) -> object:
    """Learn normal operation on the board (settings from ``template``, else from the model
    file at ``model``): epsilon, then mean and covariance (Oracle Approximating Shrinkage)
    and the precision's Cholesky factor in the model's own arrays, then a threshold from
    held-out windows for ``false_alarms_per_hour`` (the template's budget); refuses when the
    held-out windows do not fit (a fault while learning). Writes ``model`` atomically (None:
    keeps it in RAM) and runs the detector on it (start=False: returns the model instead;
    None when refused or interrupted, the old file unchanged). Prints the lines of
    docs/protocol.md "Learning". Allocates what run() does, 12d bytes, and 2d(d+1) bytes
    (compensated co-moments) while phase 1 runs, where the heap has room for them beside the
    detector's buffers; about 10 KB of code plus one phase's module (at most 3.4 KB), dropped
    before the detector starts. Per window: the features, then d(d+1)/2 multiply-adds
    (phase 1) or the score (phase 2); the factor costs about d^3/3 multiply-adds once
    (tools/bench_learn.py)."""
