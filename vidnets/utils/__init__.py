"""Small shared helpers: atomic files, safe checkpoint loading, devices and precision, sharding."""
