"""A cloud profile: which broker to meet at and with which certificate, key and signing keys.

One JSON file per party (an agent's per VIN, a workshop's per workshop id); relative paths in
it are read against the file's own folder, so a folder written by ``workshop cloud broker``
can be moved as a whole::

    {"host": "127.0.0.1", "port": 8883, "ca": "ca.crt",
     "cert": "garage-1.crt", "key": "garage-1.key", "client_id": "garage-1",
     "signing_key": "garage-1.signing.key", "grants": ["grant-WSADEM5T2T0000421-garage-1.json"]}

There is deliberately no field to connect without certificates: mutual TLS is the only way
in (docs/cloud.md, "Security").
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from workshop_app.core.cloud import topics
from workshop_app.core.cloud.errors import CloudError
from workshop_app.core.history.location import workshop_home

_PATH_FIELDS = ("ca", "cert", "key", "signing_key", "owner_key", "data_dir")


@dataclass(frozen=True, slots=True)
class CloudProfile:
    """Broker address, this party's certificate and key, and its command-signing material.

    ``signing_key`` is the workshop's Ed25519 private key (it signs commands); ``grants`` are
    owner grant files the workshop presents; ``owner_key`` is, on a vehicle, the owner's
    Ed25519 public key the agent checks grants against. ``data_dir`` is where an agent keeps
    its state (the command guard's file); None means beside the profile's owner default.
    """

    host: str
    port: int
    ca: Path
    cert: Path
    key: Path
    client_id: str
    signing_key: Path | None = None
    grants: tuple[Path, ...] = ()
    owner_key: Path | None = None
    data_dir: Path | None = None
    keepalive: int = 30
    # paho doubles the wait after each failed attempt between these two bounds (seconds).
    reconnect_min: float = 0.5
    reconnect_max: float = 15.0

    @property
    def is_vehicle(self) -> bool:
        try:
            topics.check_vin(self.client_id)
        except topics.TopicError:
            return False
        return True

    @classmethod
    def load(cls, path: Path) -> CloudProfile:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CloudError(f"{path}: no such cloud profile") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CloudError(f"{path}: cannot read the cloud profile ({exc})") from None
        except json.JSONDecodeError as exc:
            raise CloudError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(raw, dict):
            raise CloudError(f"{path}: a cloud profile must be a JSON object")
        return cls.from_json(raw, path)

    @classmethod
    def from_json(cls, raw: dict[str, Any], path: Path) -> CloudProfile:
        """Check every field; ``path`` names the file in errors and anchors relative paths."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in raw if k not in known and not k.startswith("_"))
        if unknown:
            raise CloudError(f"{path}: unknown field {unknown[0]!r}")
        base = path.parent

        def text(name: str) -> str:
            value = raw.get(name)
            if not isinstance(value, str) or not value:
                raise CloudError(f"{path}: field {name!r} must be a non-empty string")
            return value

        def file(name: str) -> Path:
            return (base / Path(text(name)).expanduser()).resolve()

        def optional_file(name: str) -> Path | None:
            return None if raw.get(name) is None else file(name)

        def number(name: str, default: float, low: float, high: float, kind: type) -> Any:
            value = raw.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
                raise CloudError(f"{path}: field {name!r} must be a number")
            if not low <= value <= high:
                raise CloudError(f"{path}: field {name!r} must be between {low:g} and {high:g}, got {value}")
            return kind(value)

        grants = raw.get("grants", [])
        if not isinstance(grants, list) or not all(isinstance(g, str) and g for g in grants):
            raise CloudError(f"{path}: field 'grants' must be a list of file names")
        client_id = text("client_id")
        try:
            topics.check_vin(client_id)
        except topics.TopicError:
            try:
                topics.check_workshop_id(client_id)
            except topics.TopicError as exc:
                raise CloudError(
                    f"{path}: field 'client_id': neither a VIN nor a workshop id ({exc})"
                ) from None
        return cls(
            host=text("host"),
            port=number("port", 0, 1, 65535, int),
            ca=file("ca"),
            cert=file("cert"),
            key=file("key"),
            client_id=client_id,
            signing_key=optional_file("signing_key"),
            grants=tuple((base / Path(g).expanduser()).resolve() for g in grants),
            owner_key=optional_file("owner_key"),
            data_dir=optional_file("data_dir"),
            keepalive=number("keepalive", 30, 5, 3600, int),
            reconnect_min=number("reconnect_min", 0.5, 0.05, 600, float),
            reconnect_max=number("reconnect_max", 15.0, 0.05, 3600, float),
        )

    def as_json(self, base: Path) -> dict[str, Any]:
        """Fields as JSON, paths inside ``base`` written relative to it."""

        def rel(p: Path) -> str:
            p = Path(p).resolve()
            try:
                return str(p.relative_to(base.resolve()))
            except ValueError:
                return str(p)

        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _PATH_FIELDS:
                out[f.name] = None if value is None else rel(value)
            elif f.name == "grants":
                out[f.name] = [rel(g) for g in value]
            else:
                out[f.name] = value
        return out

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(path.parent), indent=2) + "\n", encoding="utf-8")
        return path


def default_workshop_profile() -> Path:
    """``$WORKSHOP_HOME/cloud/workshop.json``: the profile the app and CLI use unless told."""
    return workshop_home() / "cloud" / "workshop.json"


def tls_context(profile: CloudProfile) -> ssl.SSLContext:
    """Verify the broker against the profile's CA and present the profile's certificate."""
    for name in ("ca", "cert", "key"):
        file = getattr(profile, name)
        if not Path(file).is_file():
            raise CloudError(f"cloud profile {profile.client_id}: {name} file {file} does not exist")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(profile.ca))
    except ssl.SSLError as exc:
        raise CloudError(f"{profile.ca}: not a usable CA certificate ({exc.reason or exc})") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(profile.cert), str(profile.key))
    except ssl.SSLError as exc:
        raise CloudError(
            f"{profile.cert} / {profile.key}: certificate and key do not load or do not match ({exc.reason or exc})"
        ) from None
    return context


def mqtt_client(profile: CloudProfile, *, will: tuple[str, bytes] | None = None) -> mqtt.Client:
    """An MQTT 5 client with the profile's mutual TLS, identity and back-off; not yet connected.

    ``will`` is a (topic, payload) the broker publishes, retained at QoS 1, if this client
    vanishes without saying goodbye (the agent's "offline" presence).
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=profile.client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.tls_set_context(tls_context(profile))
    # paho's annotation says int; it computes with whatever it is given, and sub-second
    # first retries matter for a broker restart.
    client.reconnect_delay_set(min_delay=profile.reconnect_min, max_delay=profile.reconnect_max)  # type: ignore[arg-type]
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client


def connection_problem(profile: CloudProfile, timeout: float = 3.0) -> str | None:
    """Why this profile cannot reach its broker, in one plain line; None if TLS gets through.

    paho only reports "not connected"; call this when a connection fails to tell the user
    whether nothing listens, the broker's certificate is not from the profile's CA, or the
    broker turned the profile's own certificate away.
    """
    where = f"broker {profile.host}:{profile.port}"
    try:
        context = tls_context(profile)
    except CloudError as exc:
        return str(exc)
    try:
        raw = socket.create_connection((profile.host, profile.port), timeout=timeout)
    except socket.gaierror:
        return f"{where}: host name {profile.host!r} not found"
    except ConnectionRefusedError:
        return f"{where}: nothing listens there (is the broker running?)"
    except OSError as exc:
        return f"{where}: not reachable ({exc.strerror or exc})"
    with raw:
        try:
            with context.wrap_socket(raw, server_hostname=profile.host) as tls:
                # Under TLS 1.3 the broker judges our certificate after the handshake and
                # answers with an alert or by hanging up; a broker content with it waits for
                # our CONNECT instead, so silence until the timeout means TLS is fine.
                tls.settimeout(min(timeout, 1.0))
                try:
                    if tls.recv(1) == b"":
                        return f"{where} hung up: it does not accept certificate {profile.cert} (another CA?)"
                except TimeoutError:
                    return None
                except ssl.SSLError as exc:
                    return f"{where} refused certificate {profile.cert} ({exc.reason or exc})"
        except ssl.SSLCertVerificationError as exc:
            return f"{where}: its certificate is not trusted by {profile.ca} ({exc.verify_message})"
        except ssl.SSLError as exc:
            return f"{where} refused the TLS handshake with {profile.cert} ({exc.reason or exc})"
        except (TimeoutError, OSError) as exc:
            return f"{where}: the TLS handshake failed ({exc})"
    return None
