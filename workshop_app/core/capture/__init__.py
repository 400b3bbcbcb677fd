"""Capture: the ring shared between threads, the message store, signal series and recording."""
