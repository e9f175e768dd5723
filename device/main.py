# vibrawatch: written by `vibrawatch deploy`. Finishes (or discards) an interrupted deploy,
# then starts the detector; a model that fails at start-up gives way to the previous one
# (its start line then ends with fallback=<failed model id>). Press Ctrl-C to get the REPL.
import vw_swap

vw_swap.apply()

import vwatch

fallback = None
try:
    vwatch.run()
except Exception as e:
    fallback = vw_swap.fall_back(e)
    if fallback is None:
        raise
if fallback is not None:
    vwatch.run(out=fallback)
