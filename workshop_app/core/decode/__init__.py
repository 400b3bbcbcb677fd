"""Signal databases (tolerant loading) and decoding."""
