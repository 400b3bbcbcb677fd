"""A real mosquitto broker for the cloud link: configuration, access list, start and stop.

The broker authenticates every client by its certificate (``require_certificate``), takes
the certificate's common name as the user name (``use_identity_as_username``) and lets each
one reach only its own topics:

* a vehicle (common name = VIN) writes its own ``state``, ``frames``, ``health`` and
  ``reply/+`` and reads its own ``req`` (mosquitto ``pattern`` lines with ``%u``);
* a workshop reads ``state``, ``frames``, ``health`` and its own ``reply/<id>`` and writes
  ``req`` only for the VINs granted to it (one ``user`` block each).

mosquitto 2.0 accepts a SUBSCRIBE outside the list and simply never delivers, so a refusal
shows as silence, not as an error (tests check it that way).

    >>> with MosquittoBroker(Path("broker"), grants={"garage-1": ["WSADEM5T2T0000421"]}) as b:  # doctest: +SKIP
    ...     print(b.port)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from workshop_app.core.cloud import topics
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.cloud.pki import CA_CERT, CertificateAuthority, Identity

MOSQUITTO = "/usr/sbin/mosquitto"
CONF = "mosquitto.conf"
ACL = "acl"
LOG = "mosquitto.log"
OUT = "mosquitto.out"
BROKER_NAME = "broker"
PROBE_NAME = "broker-probe"  # the identity the readiness check shakes hands with
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

Grants = Mapping[str, Sequence[str]]


def _die_with_parent() -> None:
    """In the child before exec: ask Linux for SIGTERM when the parent goes (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the broker is stopped by stop() only


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def acl_text(grants: Grants) -> str:
    """The mosquitto access list for these grants (workshop id → VINs it may reach)."""
    lines = [
        "# Written by workshop_app (core/cloud/broker.py). %u is the client certificate's common name.",
        "# Vehicles: their own topics only.",
    ]
    for leaf in (topics.STATE, topics.FRAMES, topics.HEALTH):
        lines.append(f"pattern write {topics.PREFIX}/%u/{leaf}")
    lines.append(f"pattern write {topics.PREFIX}/%u/{topics.REPLY}/+")
    lines.append(f"pattern read {topics.PREFIX}/%u/{topics.REQUEST}")
    for workshop in sorted(grants):
        topics.check_workshop_id(workshop)
        lines += ["", f"# Workshop {workshop}.", f"user {workshop}"]
        for vin in sorted(set(grants[workshop])):
            for leaf in (topics.STATE, topics.FRAMES, topics.HEALTH):
                lines.append(f"topic read {topics.vehicle_topic(vin, leaf)}")
            lines.append(f"topic read {topics.reply_topic(vin, workshop)}")
            lines.append(f"topic write {topics.vehicle_topic(vin, topics.REQUEST)}")
    return "\n".join(lines) + "\n"


def conf_text(folder: Path, port: int, *, log_file: bool = True) -> str:
    """mosquitto.conf: one TLS listener on 127.0.0.1, certificates required, the ACL file."""
    folder = folder.resolve()
    # Started as root, mosquitto drops to the 'mosquitto' user before reading its key files
    # (written 0600 by us); naming the user who wrote them keeps them readable.
    user = pwd.getpwuid(os.geteuid()).pw_name
    lines = [
        "# Written by workshop_app (core/cloud/broker.py): a trial broker for the cloud link.",
        "per_listener_settings false",
        "allow_anonymous false",
        "persistence false",
        f"user {user}",
        f"acl_file {folder / ACL}",
        "connection_messages true",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp true",
        f"log_dest file {folder / LOG}" if log_file else "log_dest stderr",
        "",
        f"listener {port} 127.0.0.1",
        "set_tcp_nodelay true",
        f"cafile {folder / CA_CERT}",
        f"certfile {folder / (BROKER_NAME + '.crt')}",
        f"keyfile {folder / (BROKER_NAME + '.key')}",
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
    ]
    return "\n".join(lines) + "\n"


def write_broker_files(
    folder: Path, port: int, grants: Grants, *, log_file: bool = True
) -> CertificateAuthority:
    """CA (kept if present), broker certificate, mosquitto.conf and ACL in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority.open_or_create(folder)
    if not (folder / f"{BROKER_NAME}.crt").exists() or not (folder / f"{BROKER_NAME}.key").exists():
        ca.issue_server(folder, BROKER_NAME)
    (folder / ACL).write_text(acl_text(grants), encoding="utf-8")
    (folder / CONF).write_text(conf_text(folder, port, log_file=log_file), encoding="utf-8")
    return ca


def read_trial(folder: Path) -> tuple[int, dict[str, list[str]]]:
    """Port and grants of broker files already written in ``folder`` (mosquitto.conf, ACL)."""
    conf, acl = folder / CONF, folder / ACL
    try:
        conf_lines = conf.read_text(encoding="utf-8").splitlines()
        acl_lines = acl.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CloudError(f"{exc.filename}: cannot read the trial broker's files ({exc.strerror})") from None
    ports = [line.split()[1] for line in conf_lines if line.startswith("listener ")]
    if len(ports) != 1 or not ports[0].isdigit():
        raise CloudError(f"{conf}: expected one 'listener PORT 127.0.0.1' line")
    grants: dict[str, list[str]] = {}
    workshop: str | None = None
    request = f"/{topics.REQUEST}"
    for line in acl_lines:
        words = line.split()
        if words[:1] == ["user"] and len(words) == 2:
            workshop = words[1]
            grants[workshop] = []
        elif workshop is not None and words[:2] == ["topic", "write"] and words[2].endswith(request):
            vin, _, _ = topics.parse(words[2])
            grants[workshop].append(vin)
    return int(ports[0]), grants


def log_tail(folder: Path, lines: int = 5) -> str:
    text = ""
    for name in (LOG, OUT):
        with contextlib.suppress(OSError):
            text += (folder / name).read_text(encoding="utf-8", errors="replace")
    tail = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(tail) if tail else "(nothing logged)"


class MosquittoBroker:
    """Debian's mosquitto on 127.0.0.1, configured in ``folder``; ``port`` None picks a free one.

    ``start()`` returns once a TLS handshake succeeds; ``restart()`` comes back on the same
    port (what a broker restart looks like to clients).
    """

    def __init__(self, folder: Path, port: int | None = None, grants: Grants | None = None) -> None:
        self.folder = Path(folder)
        self.port = port if port is not None else free_port()
        self.grants: dict[str, list[str]] = {k: list(v) for k, v in (grants or {}).items()}
        self.ca = write_broker_files(self.folder, self.port, self.grants)
        self._probe: Identity = self.ca.issue_client(self.folder / "probe", PROBE_NAME)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def ca_cert(self) -> Path:
        return self.ca.cert_path

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        if not Path(MOSQUITTO).exists():
            raise CloudError(f"{MOSQUITTO} not found: install Debian's mosquitto package")
        write_broker_files(self.folder, self.port, self.grants)
        # Linux ends mosquitto if the thread that started it dies (SIGKILL of a test run
        # included), so no broker outlives its owner; only the main thread lives long enough.
        tie = _die_with_parent if threading.current_thread() is threading.main_thread() else None
        with open(self.folder / OUT, "ab") as out:
            self._proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.folder / CONF)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # a Ctrl-C meant for the caller does not reach it twice
                preexec_fn=tie,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.load_cert_chain(str(self._probe.cert), str(self._probe.key))
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise CloudError(
                    f"mosquitto exited at start (status {self._proc.returncode}): {log_tail(self.folder)}"
                )
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as raw,
                    context.wrap_socket(raw, server_hostname="127.0.0.1"),
                ):
                    return
            except (OSError, ssl.SSLError) as exc:
                last = str(exc)
            time.sleep(0.02)
        raise CloudError(
            f"mosquitto did not accept TLS on 127.0.0.1:{self.port} within {START_TIMEOUT:g} s ({last}): "
            f"{log_tail(self.folder)}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)

    def restart(self) -> None:
        """Stop and start again on the same port (clients see a broker restart)."""
        self.stop()
        self.start()

    def set_grants(self, grants: Grants) -> None:
        """Rewrite the access list; a running broker reloads it (SIGHUP) for new subscriptions."""
        self.grants = {k: list(v) for k, v in grants.items()}
        (self.folder / ACL).write_text(acl_text(self.grants), encoding="utf-8")
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)

    def issue_client(self, common_name: str, folder: Path | None = None) -> Identity:
        """A client certificate from this broker's CA (VIN or workshop id as common name)."""
        return self.ca.issue_client(folder or self.folder, common_name)

    def __enter__(self) -> MosquittoBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _check_names(vins: Sequence[str], workshops: Sequence[str], grants: Grants) -> None:
    try:
        for vin in vins:
            topics.check_vin(vin)
        for workshop in workshops:
            topics.check_workshop_id(workshop)
    except topics.TopicError as exc:
        raise CloudError(str(exc)) from None
    for workshop, granted in grants.items():
        if workshop not in workshops:
            raise CloudError(f"grant for workshop {workshop!r}, which is not one of {', '.join(workshops)}")
        for vin in granted:
            if vin not in vins:
                raise CloudError(f"grant of {vin} to {workshop}: {vin} is not one of the vehicles")


def write_trial(
    folder: Path,
    vins: Sequence[str],
    workshops: Sequence[str],
    grants: Grants,
    *,
    port: int | None = None,
    grant_ttl_s: float = 30 * 24 * 3600.0,
) -> list[Path]:
    """Everything a trial needs in ``folder``; returns the files written, in order.

    ``broker/`` holds the CA, broker certificate, mosquitto.conf and ACL; ``vehicles/<VIN>/``
    an agent profile (``agent.json``) with the car's certificate and its owner's public key;
    ``workshops/<id>/`` a workshop profile (``workshop.json``) with its certificate, its
    command-signing key and the owner grants for the VINs granted to it. Each party's folder
    carries its own copy of the CA certificate, so it can be handed over on its own. One
    trial owner signs every grant (``owner/owner.key``).
    """
    from workshop_app.core.cloud import signing
    from workshop_app.core.cloud.profile import CloudProfile

    folder = Path(folder)
    _check_names(vins, workshops, grants)
    port = port if port is not None else 8883
    broker_dir = folder / "broker"
    ca = write_broker_files(broker_dir, port, grants)
    written = [ca.cert_path, broker_dir / f"{BROKER_NAME}.crt", broker_dir / CONF, broker_dir / ACL]
    owner_dir = folder / "owner"
    owner_key = owner_dir / "owner.key"
    owner_pub = signing.generate_signing_key(owner_key) if not owner_key.exists() else owner_dir / "owner.pub"
    written += [owner_key, owner_pub]

    def party(sub: Path, name: str) -> tuple[Identity, Path]:
        identity = ca.issue_client(sub, name)
        ca_copy = sub / CA_CERT
        ca_copy.write_bytes(ca.cert_path.read_bytes())
        written.extend([identity.cert, identity.key, ca_copy])
        return identity, ca_copy

    for vin in vins:
        sub = folder / "vehicles" / vin
        identity, ca_copy = party(sub, vin)
        owner_copy = sub / "owner.pub"
        owner_copy.write_bytes(owner_pub.read_bytes())
        written.append(owner_copy)
        profile = CloudProfile(
            "127.0.0.1",
            port,
            ca_copy,
            identity.cert,
            identity.key,
            vin,
            owner_key=owner_copy,
            data_dir=sub / "data",
        )
        written.append(profile.save(sub / "agent.json"))
    owner_private = signing.load_private_key(owner_key)
    for workshop in workshops:
        sub = folder / "workshops" / workshop
        identity, ca_copy = party(sub, workshop)
        signing_key = sub / f"{workshop}.signing.key"
        signing_pub = signing.generate_signing_key(signing_key)
        written += [signing_key, signing_pub]
        grant_files: list[Path] = []
        for vin in grants.get(workshop, []):
            grant = signing.make_grant(
                owner_private, vin, signing.load_public_key(signing_pub), signing.ALL_SCOPES, grant_ttl_s
            )
            grant_files.append(signing.save_grant(sub / f"grant-{vin}.json", grant))
        written += grant_files
        profile = CloudProfile(
            "127.0.0.1",
            port,
            ca_copy,
            identity.cert,
            identity.key,
            workshop,
            signing_key=signing_key,
            grants=tuple(grant_files),
        )
        written.append(profile.save(sub / "workshop.json"))
    return written
