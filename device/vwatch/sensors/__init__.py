"""vwatch's sensor drivers, one module each; import the one your board has:

    from vwatch.sensors.lsm9ds1 import LSM9DS1   # LSM9DS1 (Nano 33 BLE Sense)
    from vwatch.sensors.bmi270 import BMI270     # BMI270 (Nano 33 BLE Sense Rev2)
    from vwatch.sensors.mpu6050 import MPU6050   # MPU-6050 (GY-521)
    from vwatch.sensors.adxl345 import ADXL345   # ADXL345
    from vwatch.sensors.lis3dh import LIS3DH     # LIS3DH
    from vwatch.sensors.adc import Analog        # one machine.ADC channel (piezo, analog)
    vwatch.run(sensor=LSM9DS1(machine.I2C(1), rate=952))

i2c_sensor holds what the I2C drivers share. Every driver is a vwatch.sensor.Sensor (the interface
stays in the core, which the replay sensor implements too). This file imports nothing, so
importing one driver loads only that driver (and i2c_sensor). An optional install beside the core:
    mpremote mip install device/vwatch/sensors/package.json
(`vibrawatch deploy` uploads it with the core). docs/sensors.md: rates, FIFOs, memory, wiring.
"""
