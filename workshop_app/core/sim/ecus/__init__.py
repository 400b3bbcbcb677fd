"""The demo vehicle's diagnostic ECUs: UDS (ISO 14229) and OBD-II (SAE J1979) servers on its bus."""

from workshop_app.core.sim.ecus.dtc_memory import CONFIRM_SECONDS, RETEST_SECONDS, DtcMemory, DtcRecord
from workshop_app.core.sim.ecus.network import EcuNetwork, SimulatedEcu
from workshop_app.core.sim.ecus.obd_server import ObdServer
from workshop_app.core.sim.ecus.uds_server import EcuBehaviour, Reply, UdsServer, security_key

__all__ = [
    "CONFIRM_SECONDS",
    "RETEST_SECONDS",
    "DtcMemory",
    "DtcRecord",
    "EcuBehaviour",
    "EcuNetwork",
    "ObdServer",
    "Reply",
    "SimulatedEcu",
    "UdsServer",
    "security_key",
]
