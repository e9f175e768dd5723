# vibrawatch: written by `vibrawatch deploy`. Finishes (or discards) an interrupted deploy,
# then starts the detector. Press Ctrl-C to get the REPL.
import vw_swap

vw_swap.apply()

import vwatch

vwatch.run()
