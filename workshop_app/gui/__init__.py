"""The PySide6 window: a thin layer over workshop_app.core."""
