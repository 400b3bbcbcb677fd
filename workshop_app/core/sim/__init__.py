"""The simulated demo vehicle and the socketcand server that shares its bus."""
