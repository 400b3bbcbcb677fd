"""The Qt-free core: sources, capture, decoding, simulation. Never imports PySide6 or pyqtgraph."""
