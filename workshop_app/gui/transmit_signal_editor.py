"""One row of the Transmit panel's signal form: a spin box in the DBC's range and units, or a
combo of the signal's value table. Reads and writes values as the core's ``SignalValue``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

from workshop_app.core.transmit_encode import SignalValue, signal_default
from workshop_app.core.transmit_protect import role_text

if TYPE_CHECKING:
    from cantools.database.can import Signal as DbcSignal

__all__ = ["SignalEditor"]


def _decimals(scale: float) -> int:
    if scale <= 0 or scale >= 1:
        return 0
    return min(6, math.ceil(-math.log10(scale) - 1e-9))


def _signal_range(signal: DbcSignal) -> tuple[float, float]:
    """The DBC's minimum/maximum, or what the raw bits can hold where the DBC gives none."""
    if signal.is_signed:
        raw_low, raw_high = -(1 << (signal.length - 1)), (1 << (signal.length - 1)) - 1
    else:
        raw_low, raw_high = 0, (1 << signal.length) - 1
    ends = sorted((raw_low * signal.scale + signal.offset, raw_high * signal.scale + signal.offset))
    low = signal.minimum if signal.minimum is not None else ends[0]
    high = signal.maximum if signal.maximum is not None else ends[1]
    if low >= high:  # "[0|0]" in a DBC means "not given"
        low, high = ends
    return float(low), float(high)


class SignalEditor:
    """One row of the signal form: a spin box, or a combo for a value table."""

    def __init__(self, signal: DbcSignal) -> None:
        self.signal = signal
        self.combo: QComboBox | None = None
        self.spin: QDoubleSpinBox | None = None
        default = signal_default(signal)
        choices = signal.choices or {}
        if len(choices) >= 2:
            self.combo = QComboBox()
            self.combo.setMinimumWidth(170)
            for raw in sorted(choices):
                scaled = raw * signal.scale + signal.offset
                self.combo.addItem(f"{choices[raw]} ({raw})", scaled)
            index = self.combo.findData(default)
            self.combo.setCurrentIndex(max(index, 0))
            self.widget: QWidget = self.combo
        else:
            self.spin = QDoubleSpinBox()
            low, high = _signal_range(signal)
            self.spin.setRange(low, high)
            self.spin.setDecimals(_decimals(signal.scale))
            self.spin.setSingleStep(signal.scale if signal.scale > 0 else 1.0)
            if signal.unit:
                self.spin.setSuffix(f" {signal.unit}")
            self.spin.setValue(default)
            self.spin.setMinimumWidth(170)
            self.widget = self.spin
        self.field = QWidget()
        row = QHBoxLayout(self.field)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.widget)
        # A counter or checksum the DBC declares is filled per frame by the transmit jobs.
        self.role = role_text(signal)
        if self.role is not None:
            self.widget.setEnabled(False)
        hint = QLabel(f"{self.role}: filled per frame" if self.role is not None else self._hint())
        hint.setEnabled(False)  # drawn in the palette's muted text colour
        row.addWidget(hint)
        row.addStretch(1)

    def _hint(self) -> str:
        signal = self.signal
        if self.combo is not None:
            return "value table"
        low, high = _signal_range(signal)
        unit = f" {signal.unit}" if signal.unit else ""
        return f"{low:g} … {high:g}{unit}"

    def value(self) -> SignalValue:
        if self.combo is not None:
            data = self.combo.currentData()
            return int(data) if float(data).is_integer() else float(data)
        assert self.spin is not None
        number = self.spin.value()
        return round(number) if self.spin.decimals() == 0 else number

    def set_value(self, value: SignalValue) -> None:
        if self.combo is not None:
            index = self.combo.findData(value)
            if index < 0 and isinstance(value, str):
                index = next(
                    (i for i in range(self.combo.count()) if self.combo.itemText(i).startswith(f"{value} (")),
                    -1,
                )
            if index >= 0:
                self.combo.setCurrentIndex(index)
        elif self.spin is not None and isinstance(value, (int, float)):
            self.spin.setValue(float(value))
