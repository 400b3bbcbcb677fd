"""Diagnostics: DTCs, ECU descriptions, UDS/OBD-II clients, vehicle scans (Qt-free)."""
