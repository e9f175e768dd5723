"""Whether this board's MCU has a floating-point unit, from the name MicroPython gives it.

    from vwatch.fpu import has_fpu
    has_fpu()                                   # this board
    has_fpu("Raspberry Pi Pico with RP2040")    # False

No port reports the FPU itself; sys.implementation._machine ends in the MCU's name
("<board> with <MCU>", MICROPY_HW_MCU_NAME in ports/*/mpconfigport.h and the boards'
mpconfigboard.h), and NO_FPU lists the MCU families that lack one. vwatch's "auto" backend
choice imports this only when ulab is missing.
"""

# Cortex-M0/M0+/M3 and M4 without F, the RISC-V ESP32s and RP2350 cores, ESP8266, ESP32-S2
NO_FPU = ("RP2040", "RP2350-RISCV", "ESP8266", "ESP32C2", "ESP32C3", "ESP32C5", "ESP32C6",
          "ESP32H2", "ESP32S2", "SAMD21", "NRF51", "STM32F0", "STM32F1", "STM32F2", "STM32G0",
          "STM32L0", "STM32L1", "STM32C0", "STM32WL", "CC3200")


def has_fpu(machine=None):
    """False when ``machine`` (default: this board's sys.implementation._machine) names an
    MCU of NO_FPU; True otherwise, unknown chips included (they keep the float backend)."""
    if machine is None:
        import sys

        machine = getattr(sys.implementation, "_machine", "")
    mcu = machine.upper().replace("-", "").replace("_", "")
    for name in NO_FPU:
        if name.replace("-", "") in mcu:
            return False
    return True
