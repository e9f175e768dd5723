# Type stubs for exactly what vwatch uses of ulab (numpy for MicroPython; it publishes no
# stubs): the static check of device/ (tests/test_static.py) and editors read them. Add a name
# here when device code starts using it; anything else stays an error, as on a board whose
# firmware lacks it.
from . import numpy as numpy
from . import utils as utils

__version__: str
