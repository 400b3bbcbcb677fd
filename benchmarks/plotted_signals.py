"""The 16 demo-car signals the window benchmarks plot (four plots of four curves)."""

PLOTTED = [
    ("ENGINE_DATA", "EngineSpeed"),
    ("ENGINE_DATA", "AccelPedalPosition"),
    ("ENGINE_DATA", "ThrottlePosition"),
    ("ENGINE_DATA", "EngineLoad"),
    ("WHEEL_SPEEDS", "WheelSpeedFL"),
    ("WHEEL_SPEEDS", "WheelSpeedFR"),
    ("WHEEL_SPEEDS", "WheelSpeedRL"),
    ("WHEEL_SPEEDS", "WheelSpeedRR"),
    ("ABS_STATUS", "VehicleSpeed"),
    ("ABS_STATUS", "LongitudinalAccel"),
    ("STEERING", "SteeringAngle"),
    ("BRAKE_STATUS", "BrakePressure"),
    ("TRANSMISSION", "GearSelector"),
    ("BATTERY_STATUS", "BatteryVoltage"),
    ("ENGINE_TEMPS", "CoolantTemp"),
    ("CLIMATE_STATUS", "CabinTemp"),
]
