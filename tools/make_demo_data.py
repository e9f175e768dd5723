"""Cut the demo's bundled recordings from the Analog Devices CbM data in ../shared/data.

Developer script: run it only to remake host/vibrawatch/data/*.wav. It converts ADI's
volts to g exactly as `vibrawatch` reads those files (recordings._load_adi_csv) and writes
float32 WAV, which every part of vibrawatch (host and board) reads.

    python tools/make_demo_data.py [--source ../shared/data/adi-cbm-motor]
"""

import argparse
from pathlib import Path

import numpy as np
import scipy.io.wavfile

from vibrawatch import recordings

ROOT = Path(__file__).resolve().parents[1]
FILES = {
    "adi_1800rpm_normal.wav": "1800_GoB_GS_BaLo_WA_00lb.Wfm.csv",
    "adi_1800rpm_outer_race.wav": "1800_HOR_GS_BaLo_WA_00lb.Wfm.csv",
    "adi_1800rpm_imbalance.wav": "1800_GoB_GS_HImL_WA_00lb.Wfm.csv",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(ROOT.parent / "shared/data/adi-cbm-motor"))
    parser.add_argument("--out", default=str(ROOT / "host/vibrawatch/data"))
    args = parser.parse_args()
    for name, source in FILES.items():
        rec = recordings.load(Path(args.source) / source)
        out = Path(args.out) / name
        scipy.io.wavfile.write(out, int(round(rec.rate)), np.asarray(rec.samples, np.float32))
        print("%s <- %s (%d frames at %g Hz, %d channels)"
              % (out.name, source, rec.frames, rec.rate, rec.channels))


if __name__ == "__main__":
    main()
