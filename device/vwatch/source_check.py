"""Does a source of samples fit a model? The one check before run(), learn() and score_file():
a sensor or a recording (anything with .channels and .rate, and .path or .name) must deliver
the model's channels at its rate (0.5 % tolerance), and a recording must hold one window.

Its own module, loaded for the check and unloaded after it (vwatch.check_source): its messages
are not held while the detector runs.
"""


def check(source, m, frames=None):
    """Raise ValueError unless ``source`` fits model ``m``; ``frames``: a recording's length."""
    name = getattr(source, "path", None) or getattr(source, "name", "the sensor")
    if source.channels != m.channels:
        raise ValueError("%s: %d channels but model %s expects %d channels; configure the sensor "
                         "or record the model's channels, or fit a model for %d"
                         % (name, source.channels, m.model_id, m.channels, source.channels))
    if abs(source.rate - m.rate) > 0.005 * m.rate:
        raise ValueError("%s: sample rate %g Hz but model %s expects %g Hz (0.5 %% tolerance); "
                         "set the sensor's rate or resample the recording, or fit a model at "
                         "%g Hz" % (name, source.rate, m.model_id, m.rate, source.rate))
    if frames is not None and frames < m.window:
        raise ValueError("%s: %d frames, shorter than one window of %d; record at least %d "
                         "frames" % (name, frames, m.window, m.window))
