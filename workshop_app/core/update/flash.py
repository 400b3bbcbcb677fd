"""The flash job: program one ECU with a :class:`FlashImage` over UDS (ISO 14229), safely.

Runs on a connection's bus and notifier through the diagnostic client (``core/diag/client.py``:
can-isotp on the capture's notifier, udsoncan, TesterPresent kept up by the client while a
non-default session is open). The sequence::

    preconditions (battery ≥ 12 V, vehicle speed 0, engine off; routine 0x0203:
    ``flash_preconditions.py``)
    extended session; to every ECU (functional, no answers): extended session, ControlDTCSetting
    off (0x85 02), CommunicationControl disable (0x28 03 01), TesterPresent every 2 s
    programming session → SecurityAccess 0x11/0x12 → erase (0x31 FF00, NRC 0x78 waited out)
    per segment: RequestDownload (block length from the ECU) → TransferData … → RequestTransferExit
    check memory (0x0202, CRC-32) → check dependencies (0xFF01)
    write 0xF189 and 0xF1B0 → ECUReset → read back and compare
    to every ECU: communication and DTC setting back on, default session (also after a failure
    or a cancel)

Every acknowledged block is written to the flash journal, committed while the next block is on
the wire (so the disk never holds the bus up), and before anything else happens after the last
one; a cancel or a killed tool leaves a state :meth:`FlashJob.run` with ``resume=`` continues
from, at most two blocks behind what the ECU holds.
A check routine that fails, or answers anything but "ok", ends the job as failed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import can
from udsoncan.common.MemoryLocation import MemoryLocation

from workshop_app.core.diag.client import DiagError, EcuAddress, EcuClient
from workshop_app.core.diag.functional import FunctionalTester
from workshop_app.core.history.audit import AuditEntry, AuditTrail, audit_time
from workshop_app.core.update import protocol as p
from workshop_app.core.update.flash_preconditions import (
    check_live_values,
    check_precondition_routine,
    read_optional,
)
from workshop_app.core.update.flash_types import (
    DID_BATTERY,
    DID_ENGINE_SPEED,
    DID_VEHICLE_SPEED,
    DID_VIN,
    BytesCodec,
    FlashError,
    FlashOptions,
    FlashResult,
    Progress,
    ascii_text,
    next_counter,
)
from workshop_app.core.update.image import FlashImage
from workshop_app.core.update.journal import FlashJournal, JournalEntry

__all__ = [
    "DID_VIN",
    "FlashError",
    "FlashJob",
    "FlashOptions",
    "FlashResult",
    "Progress",
    "next_counter",
]


class FlashJob:
    """Program ``image`` into the ECU at ``address``; one job per attempt, run on one thread.

    >>> job = FlashJob(bus, notifier, EcuAddress(0x7E0, 0x7E8), image, journal=j, audit=a)  # doctest: +SKIP
    >>> job.run(progress=None, cancel=threading.Event()).ok                                  # doctest: +SKIP
    """

    def __init__(
        self,
        bus: can.BusABC,
        notifier: can.Notifier,
        address: EcuAddress,
        image: FlashImage,
        *,
        journal: FlashJournal | None = None,
        audit: AuditTrail | None = None,
        options: FlashOptions | None = None,
        resume: JournalEntry | None = None,
    ) -> None:
        self.bus = bus
        self.notifier = notifier
        self.address = address
        self.image = image
        self.journal = journal
        self.audit = audit
        self.options = options or FlashOptions()
        self.resume_from = resume
        if self.options.algorithm not in p.SEED_KEY_ALGORITHMS:
            known = ", ".join(sorted(p.SEED_KEY_ALGORITHMS))
            raise FlashError(f"unknown seed/key algorithm {self.options.algorithm!r} (known: {known})")
        if resume is not None and resume.target_hash != image.target_hash:
            raise FlashError(
                f"journal entry {resume.id} was for image {resume.target_hash[:12]}…, "
                f"not {image.target_hash[:12]}… ({image.target_name}): restart the flash instead"
            )
        self._entry: int | None = None
        self._notes: list[str] = []  # said to the user with the result
        self._progress: Progress = lambda _phase, _done, _total: None
        self._sent = 0
        self._everyone = FunctionalTester(bus, extended=address.extended, fd=self.options.fd)
        self._car_quiet = False  # the functional requests that quiet the car were sent
        self._unjournalled: tuple[int, int, int, int, int] | None = None  # last block, not committed

    # --- the job ----------------------------------------------------------------------------
    def run(self, progress: Progress | None = None, cancel: threading.Event | None = None) -> FlashResult:
        """Flash (or resume); never raises for ECU or link failures: they are in the result."""
        cancel = cancel or threading.Event()
        self._progress = progress or self._progress
        self._audit_interrupted()
        started = time.time()
        t0 = time.monotonic()
        result = FlashResult(self.image.ecu, "failed", total_bytes=self.image.size)
        result.to_version = self.image.software_version
        result.resumed = self.resume_from is not None
        with EcuClient(
            self.bus,
            self.notifier,
            self.address,
            name=self.image.ecu,
            fd=self.options.fd,
            timeout=self.options.p2_timeout_s,
        ) as client:
            dids = dict(client.client.config["data_identifiers"])
            dids.update({did: BytesCodec() for did in self._dids()})
            client.client.set_config("data_identifiers", dids)
            try:
                self._flash(client, result, cancel)
            except FlashError as exc:
                result.result = "refused" if exc.refused else "failed"
                result.error = str(exc)
            except DiagError as exc:
                result.error = str(exc)
            except _Cancelled:
                result.result = "cancelled"
                result.error = "cancelled by the user; the ECU waits in its bootloader for a resume"
            finally:
                self._journal_block()  # a block acknowledged before a failure or cancel
                self._give_back_the_car()  # every ECU, whatever the outcome
            result.notes.extend(self._notes)
            result.notes.extend(client.problems)
            result.notes.extend(self._everyone.problems)
        result.seconds = time.monotonic() - t0
        result.bytes_sent = self._sent
        result.journal_id = self._entry
        if self.journal is not None and self._entry is not None:
            entry = self.journal.get(self._entry)
            # A download cancelled, failed or refused on resuming stays open (resumable); the
            # other ends close it.
            if result.ok or entry is None or not entry.resumable:
                self.journal.close_entry(self._entry, result.result)
            else:
                self.journal.set_result(self._entry, result.result)
        if self.audit is not None:
            self.audit.append(
                AuditEntry(
                    ecu=self.image.ecu,
                    result=result.result,
                    duration_s=round(result.seconds, 3),
                    vin=self.options.vin,
                    from_version=result.from_version,
                    to_version=result.to_version,
                    target_hash=self.image.target_hash,
                    error=result.error,
                    time=audit_time(started),
                )
            )
        return result

    def _audit_interrupted(self) -> None:
        """A resumed entry whose attempt never ended (tool killed) gets its audit row now."""
        entry = self.resume_from
        if entry is None or self.audit is None or entry.result:
            return
        self.audit.append(
            AuditEntry(
                ecu=entry.ecu,
                result="interrupted",
                duration_s=round(entry.updated - entry.started, 3),
                vin=entry.vin,
                from_version=entry.from_version,
                to_version=entry.to_version,
                target_hash=entry.target_hash,
                error=f"the tool stopped during step {entry.step!r} after {entry.bytes_done} of "
                f"{entry.total_bytes} bytes (journal entry {entry.id})",
                time=audit_time(entry.started),
            )
        )

    def _dids(self) -> tuple[int, ...]:
        return (
            DID_VIN,
            DID_BATTERY,
            DID_ENGINE_SPEED,
            DID_VEHICLE_SPEED,
            p.DID_APP_SOFTWARE,
            p.DID_RELEASE_COUNTER,
            p.DID_APP_VALID,
            p.DID_BOOT_SOFTWARE,
            p.DID_HARDWARE,
        )

    def _flash(self, client: EcuClient, result: FlashResult, cancel: threading.Event) -> None:
        if callable(getattr(self.bus, "uds_connection", None)):
            # The cloud link carries no raw frames, and its agent refuses programming services:
            # a car flashes from the cloud only a package it verifies itself.
            raise FlashError(
                f"{self.image.ecu}: programming over the cloud link is the car's own job: send it the "
                "signed command (workshop cloud flash VIN --package-url URL)",
                refused=True,
            )
        resume = self.resume_from
        if not self.options.vin:  # journal and audit rows name the car: ask it when not told
            self.options.vin = resume.vin if resume else self._read_text(client, DID_VIN)
        result.vin = self.options.vin
        result.from_version = resume.from_version if resume else self._read_text(client, p.DID_APP_SOFTWARE)
        self._phase("preconditions")
        battery_read = check_live_values(client, self.image.ecu, self.options)
        if self.journal is not None:
            if resume is not None:
                self._entry = resume.id
            else:
                self._entry = self.journal.open_entry(
                    vin=self.options.vin,
                    ecu=self.image.ecu,
                    target_name=self.image.target_name,
                    target_hash=self.image.target_hash,
                    image_path=self.options.image_path,
                    image_crc=self.image.crc32(),
                    total_bytes=self.image.size,
                    release_counter=self.image.release_counter,
                    image_address=self.options.image_address,
                    from_version=result.from_version,
                    to_version=self.image.software_version,
                )
        if resume is None:  # a resume keeps the journal's download state until new blocks land
            self._step("preconditions")
        self._phase("programming session")
        client.change_session(p.EXTENDED_SESSION)
        check_precondition_routine(client, self.image.ecu, result.notes, battery_read)
        self._quiet_the_car()
        client.change_session(p.PROGRAMMING_SESSION)
        self._unlock(client)
        start = self._resume_point(client, result)
        if start is None:
            self._step("programming")
            self._erase(client, cancel)
            start = (0, 0)
        try:
            self._download(client, cancel, *start)
        except _ResumeRefused as exc:
            result.notes.append(f"restarted from the erase: {exc}")
            self._sent = 0
            self._erase(client, cancel)
            self._download(client, cancel, 0, 0)
        self._step("downloaded")
        self._checks(client)
        self._step("checked")
        self._write_version(client)
        self._step("version-written")
        self._phase("reset")
        self._call(client, "ECU reset", client.client.ecu_reset, 0x01)
        self._step("reset")
        self._confirm(client)
        self._give_back_the_car()
        client.change_session(p.DEFAULT_SESSION)
        self._step("done")
        result.result = "success"
        self._phase("done")

    # --- steps -------------------------------------------------------------------------------
    def _quiet_the_car(self) -> None:
        """Every ECU (functional address, positive answers suppressed): extended session, no new
        DTCs, no normal messages; TesterPresent keeps them there until :meth:`_give_back_the_car`."""
        self._phase("quiet the car")
        self._car_quiet = True
        try:
            self._everyone.quiet_for_programming()
        except (can.CanError, OSError) as exc:  # e.g. a link that carries no raw frames
            raise FlashError(
                f"{self.image.ecu}: cannot send the functional requests that quiet the car before "
                f"programming ({exc}); nothing was programmed"
            ) from None

    def _give_back_the_car(self) -> None:
        """Communication and DTC setting back on, default session: every ECU, best effort."""
        if not self._car_quiet:
            return
        self._car_quiet = False
        try:
            self._everyone.give_back()
        except (can.CanError, OSError) as exc:  # S3 (5 s without TesterPresent) restores them anyway
            self._everyone.problems.append(
                f"restoring the other ECUs failed ({exc}); they recover within 5 s"
            )

    def _unlock(self, client: EcuClient) -> None:
        level = p.PROGRAMMING_SECURITY_LEVEL
        response = self._call(client, "security seed", client.client.request_seed, level)
        seed = bytes(response.service_data.seed)
        if any(seed):  # an all-zero seed means: already unlocked
            key = p.SEED_KEY_ALGORITHMS[self.options.algorithm](seed)
            self._call(client, "security key", client.client.send_key, level + 1, key)

    def _resume_point(self, client: EcuClient, result: FlashResult) -> tuple[int, int] | None:
        """(segment, offset) to continue from, or None to erase and start over."""
        entry = self.resume_from
        if entry is None:
            return None
        valid = self._read_optional(client, p.DID_APP_VALID)
        if not entry.resumable or valid is None or valid[:1] != b"\x00":
            why = (
                "the journal is past the download"
                if not entry.resumable
                else "the ECU does not report a partial image"
            )
            result.notes.append(f"restarted from the erase: {why}")
            return None
        result.notes.append(
            f"resumed at segment {entry.segment} offset {entry.offset} ({entry.bytes_done} of {entry.total_bytes} bytes)"
        )
        self._sent = entry.bytes_done
        return entry.segment, entry.offset

    def _erase(self, client: EcuClient, cancel: threading.Event) -> None:
        segments = self.image.segments
        timeout = client.client.config["request_timeout"]
        # udsoncan's overall timeout runs through NRC 0x78s: a slow erase needs it long.
        client.client.set_config("request_timeout", self.options.erase_timeout_s)
        try:
            for i, segment in enumerate(segments):
                self._check_cancel(cancel)
                self._phase("erase", i, len(segments))
                record = bytes([p.ADDRESS_AND_LENGTH_FORMAT]) + segment.address.to_bytes(4, "big")
                record += len(segment.data).to_bytes(4, "big")
                response = self._call(
                    client,
                    f"erase 0x{segment.address:08X}",
                    client.client.start_routine,
                    p.ROUTINE_ERASE_MEMORY,
                    record,
                )
                self._routine_ok(response, f"erase of 0x{segment.address:08X}", required=False)
        finally:
            client.client.set_config("request_timeout", timeout)
        self._step("erased")
        if self.journal is not None and self._entry is not None:
            self.journal.acknowledged(self._entry, 0, 0, 1, 0)

    def _download(self, client: EcuClient, cancel: threading.Event, first: int, offset: int) -> None:
        """Segments from ``first`` (its bytes from ``offset``): each its own 0x34 … 0x36 … 0x37."""
        total = self.image.size
        for index in range(first, len(self.image.segments)):
            segment = self.image.segments[index]
            start = offset if index == first else 0
            counter = 1  # every RequestDownload starts the block sequence at 0x01 (ISO 14229-1)
            if not segment.data[start:]:
                continue
            response, start = self._request_download(
                client, index, start, resuming=index == first and start > 0
            )
            max_length = int(response.service_data.max_length)
            block = min(max_length, self.options.max_message) - 2  # minus SID and block counter
            if block <= 0:
                raise FlashError(
                    f"{self.image.ecu}: the ECU allows blocks of {max_length} bytes: nothing fits"
                )
            done = start
            while done < len(segment.data):
                self._check_cancel(cancel)
                chunk = segment.data[done : done + block]
                # The previous block's journal row is committed while this one is on the wire.
                client.after_send(self._journal_block)
                self._transfer(client, counter, chunk, segment.address + done)
                self._journal_block()  # no request was sent (retries exhausted): commit it now
                done += len(chunk)
                self._sent += len(chunk)
                counter = next_counter(counter)
                self._unjournalled = (index, done, counter, self._sent, block)
                self._phase("download", self._sent, total)
            self._journal_block()
            self._call(client, "request transfer exit", client.client.request_transfer_exit)
            # The next segment begins at its own start: the journal says so before it is requested.
            if self.journal is not None and self._entry is not None and index + 1 < len(self.image.segments):
                self.journal.acknowledged(self._entry, index + 1, 0, 1, self._sent)

    def _journal_block(self) -> None:
        """Commit the last acknowledged block's journal row, if it is not yet."""
        pending, self._unjournalled = self._unjournalled, None
        if pending is not None and self.journal is not None and self._entry is not None:
            self.journal.acknowledged(self._entry, *pending)

    def _request_download(
        self, client: EcuClient, index: int, start: int, *, resuming: bool
    ) -> tuple[Any, int]:
        """RequestDownload of segment ``index`` from ``start``; (response, where the download starts).

        Resuming, the ECU may refuse the journalled offset because blocks landed after it: the
        block in flight when the tool stopped (written, answer never read), and the one before it
        when the tool stopped while that block's journal row was being committed. So one and two
        blocks further are tried; the memory check still proves every byte. A third refusal
        erases and starts over.
        """
        segment = self.image.segments[index]
        entry = self.resume_from
        step = entry.block_bytes if entry is not None else 0
        tries = [start]
        if resuming and step > 0:
            tries += [o for o in (start + step, start + 2 * step) if o < len(segment.data)]
        for n, offset in enumerate(tries):
            address = segment.address + offset
            size = len(segment.data) - offset
            location = MemoryLocation(address, size, address_format=32, memorysize_format=32)
            try:
                response = self._call(
                    client, f"request download at 0x{address:08X}", client.client.request_download, location
                )
            except DiagError as exc:
                if not resuming or exc.nrc is None:
                    raise
                if n + 1 < len(tries):
                    continue
                raise _ResumeRefused(f"the ECU refused to continue at 0x{address:08X} ({exc})") from None
            if offset != start:
                self._sent += offset - start
                self._notes.append(
                    f"the block in flight when the tool stopped had landed: continued at offset {offset}"
                )
            return response, offset
        raise AssertionError("unreachable: every try returns or raises")

    def _transfer(self, client: EcuClient, counter: int, chunk: bytes, address: int) -> None:
        """One TransferData block; a lost answer resends the same block with the same counter."""
        for attempt in range(self.options.block_retries + 1):
            try:
                client.call(
                    f"transfer data block {counter} at 0x{address:08X}",
                    client.client.transfer_data,
                    counter,
                    chunk,
                )
                return
            except DiagError as exc:
                if exc.kind != "timeout" or attempt == self.options.block_retries:
                    raise FlashError(f"{exc}; the flash stops here and can be resumed", nrc=exc.nrc) from None
                client.problems.append(f"block {counter} at 0x{address:08X}: no answer, sent again")

    def _checks(self, client: EcuClient) -> None:
        self._phase("check memory")
        crc = self.image.crc32().to_bytes(4, "big")
        response = self._call(
            client, "check memory", client.client.start_routine, p.ROUTINE_CHECK_MEMORY, crc
        )
        self._routine_ok(response, f"memory check (CRC-32 0x{crc.hex().upper()})")
        self._phase("check dependencies")
        response = self._call(
            client, "check dependencies", client.client.start_routine, p.ROUTINE_CHECK_DEPENDENCIES
        )
        self._routine_ok(response, "dependency check")

    def _write_version(self, client: EcuClient) -> None:
        version = self.image.software_version.encode("ascii", errors="replace")[:8].ljust(8, b" ")
        self._call(
            client,
            "write software version",
            client.client.write_data_by_identifier,
            p.DID_APP_SOFTWARE,
            version,
        )
        counter = self.image.release_counter.to_bytes(4, "big")
        self._call(
            client,
            "write release counter",
            client.client.write_data_by_identifier,
            p.DID_RELEASE_COUNTER,
            counter,
        )

    def _confirm(self, client: EcuClient) -> None:
        """After the reset: the ECU answers again and reports the new version and counter."""
        self._phase("confirm")
        deadline = time.monotonic() + self.options.reset_wait_s
        while True:
            try:
                version = self._read_text(client, p.DID_APP_SOFTWARE, required=True)
                counter = client.call("read release counter", client.read_did, p.DID_RELEASE_COUNTER)
                break
            except DiagError:
                if time.monotonic() > deadline:
                    raise FlashError(
                        f"{self.image.ecu}: no answer within {self.options.reset_wait_s:.0f} s after the reset"
                    ) from None
                time.sleep(0.2)
        expected = self.image.software_version[:8].strip()
        if version != expected or int.from_bytes(bytes(counter)[:4], "big") != self.image.release_counter:
            raise FlashError(
                f"{self.image.ecu}: after the reset the ECU reports version {version!r} release "
                f"{int.from_bytes(bytes(counter)[:4], 'big')}, expected {expected!r} release {self.image.release_counter}"
            )

    # --- helpers -----------------------------------------------------------------------------
    def _call(self, client: EcuClient, action: str, fn: Any, *args: Any) -> Any:
        return client.call(action, fn, *args)

    def _read_optional(self, client: EcuClient, did: int) -> bytes | None:
        # Refused, not failed, while no journal entry says that anything was started.
        return read_optional(client, did, refused=self._entry is None)

    def _read_text(self, client: EcuClient, did: int, *, required: bool = False) -> str:
        if required:
            return ascii_text(bytes(client.read_did(did)))
        raw = self._read_optional(client, did)
        return ascii_text(raw) if raw is not None else ""

    def _routine_ok(self, response: Any, what: str, *, required: bool = True) -> None:
        """A check passes only on status 0x00; the erase may answer without a status record."""
        status = bytes(response.service_data.routine_status_record or b"")
        if (required and not status) or (status and status[0] != p.ROUTINE_OK):
            code = f"0x{status[0]:02X}" if status else "no status"
            raise FlashError(f"{self.image.ecu}: {what} failed (routine answered {code})")

    def _check_cancel(self, cancel: threading.Event) -> None:
        if cancel.is_set():
            raise _Cancelled

    def _step(self, step: str) -> None:
        if self.journal is not None and self._entry is not None:
            self.journal.step(self._entry, step)

    def _phase(self, phase: str, done: int = 0, total: int = 0) -> None:
        self._progress(phase, done, total)


class _Cancelled(Exception):
    """The cancel event was seen between two steps or blocks."""


class _ResumeRefused(Exception):
    """The ECU would not take a download starting mid-segment: erase and start over."""
