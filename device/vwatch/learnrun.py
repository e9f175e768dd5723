"""vwatch.learn(): learn normal operation, then hand the heap to the detector.

Kept out of vwatch/__init__.py so that importing vwatch interns none of its names, and out of
vwatch.learning so that learning's code can be dropped before the detector's is loaded.
"""

import gc
import sys


def learn(seconds, model, sensor, backend, out, template, speed, start, false_alarms_per_hour,
          compensate):
    import vwatch
    from . import learning

    m, sensor, own = learning.learn_only(seconds, model, sensor, backend, out, template, speed,
                                         false_alarms_per_hour, compensate)
    try:
        if m is None or not start:
            return m
        # The detector needs the heap that learning's code held: drop the module (the model
        # is a vwatch.Model, not learning's), then load the runtime.
        learning = None
        sys.modules.pop("vwatch.learning", None)
        try:
            delattr(vwatch, "learning")
        except (AttributeError, KeyError):
            pass
        gc.collect()
        from . import runtime

        runtime.run(m, sensor, backend, speed, None, out)
        return m
    finally:
        if own:
            sensor.close()
