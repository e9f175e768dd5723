# Type stubs for exactly what vwatch.mqtt uses of micropython-lib's umqtt.simple (installed
# on a board with `mpremote mip install umqtt.simple`; it publishes no stubs). See ulab's.
