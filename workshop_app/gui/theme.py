"""Light and dark palettes on the Fusion style (same look on every platform)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("light", "dark")


def apply_theme(app: QApplication, name: str) -> None:
    app.setStyle("Fusion")
    if name == "dark":
        app.setPalette(_dark_palette())
    else:
        app.setPalette(app.style().standardPalette())


def _dark_palette() -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    base, window, text = QColor(30, 32, 36), QColor(43, 46, 51), QColor(222, 226, 230)
    p.setColor(role.Window, window)
    p.setColor(role.WindowText, text)
    p.setColor(role.Base, base)
    p.setColor(role.AlternateBase, QColor(37, 40, 45))
    p.setColor(role.ToolTipBase, window)
    p.setColor(role.ToolTipText, text)
    p.setColor(role.Text, text)
    p.setColor(role.Button, window)
    p.setColor(role.ButtonText, text)
    p.setColor(role.BrightText, QColor(255, 99, 99))
    p.setColor(role.Highlight, QColor(47, 111, 171))
    p.setColor(role.HighlightedText, QColor(255, 255, 255))
    p.setColor(role.Link, QColor(110, 170, 255))
    p.setColor(role.PlaceholderText, QColor(140, 146, 153))
    for group in (QPalette.ColorGroup.Disabled,):
        p.setColor(group, role.Text, QColor(120, 124, 130))
        p.setColor(group, role.ButtonText, QColor(120, 124, 130))
        p.setColor(group, role.WindowText, QColor(120, 124, 130))
    return p
