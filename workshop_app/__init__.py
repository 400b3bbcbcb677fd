"""workshop_app: a workshop tool for cars (CAN capture, signal decoding, diagnostics, logs)."""

__version__ = "0.1.0"
