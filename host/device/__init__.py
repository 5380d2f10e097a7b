"""Device access: register bus, registers by name, the driver and the offloaded engine."""
