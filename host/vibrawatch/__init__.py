"""vibrawatch: vibration anomaly detection on tiny boards (host side).

The board side is the MicroPython package ``vwatch`` (device/vwatch in the source tree).
"""

__version__ = "0.1.0"
