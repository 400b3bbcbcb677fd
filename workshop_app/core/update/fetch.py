"""Where a package's files come from: one fetcher interface (tuf's), two implementations.

:class:`LocalPackageFetcher` serves a package folder or a .tar/.tar.gz/.zip archive of it
(USB stick, download); :class:`HttpPackageFetcher` serves a package published on an HTTP(S)
server. Both remember the metadata they served, so a refused signature can be explained.
"""

from __future__ import annotations

import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from tuf.api.exceptions import DownloadHTTPError
from tuf.ngclient import FetcherInterface

from workshop_app.core.update.refusals import (
    ARCHIVE_BOMB,
    PACKAGE_UNREADABLE,
    PATH_TRAVERSAL,
    PackageError,
    Refusal,
)

LOCAL_BASE = "package:/"
CHUNK = 64 * 1024
# Caps on what an archive may expand to: one member, and all members read in one verification.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_ARCHIVE_BYTES = 512 * 1024 * 1024
HTTP_TIMEOUT_S = 15.0


class PackageFetcher(FetcherInterface):
    """A tuf fetcher that also keeps the last bytes served per metadata file name."""

    base_url: str

    def __init__(self) -> None:
        self.metadata_served: dict[str, bytes] = {}

    def _fetch(self, url: str) -> Iterator[bytes]:
        chunks = self._open(url)
        if not url.endswith(".json"):
            return chunks
        return self._recording(url, chunks)

    def _recording(self, url: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        kept = bytearray()
        try:
            for chunk in chunks:
                kept += chunk
                yield chunk
        finally:
            self.metadata_served[url] = bytes(kept)

    def _open(self, url: str) -> Iterator[bytes]:
        raise NotImplementedError

    def read(self, relative: str, limit: int) -> bytes:
        """A whole file of the package (for ``inspect``), at most ``limit`` bytes."""
        data = bytearray()
        for chunk in self._open(self.base_url + relative):
            data += chunk
            if len(data) > limit:
                raise PackageError(Refusal(ARCHIVE_BOMB, f"larger than {limit} bytes", relative))
        return bytes(data)

    def close(self) -> None:
        """Release an open archive."""


def _relative(url: str, base: str) -> str:
    """The package-relative path of ``url``, refusing anything that climbs out of the package."""
    if not url.startswith(base):
        raise PackageError(Refusal(PATH_TRAVERSAL, "a file outside the package was asked for", url))
    rel = unquote(url[len(base) :])
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or "\\" in rel or any(p in ("..", ".") for p in parts):
        raise PackageError(Refusal(PATH_TRAVERSAL, "a path climbing out of the package", rel))
    return "/".join(parts)


class LocalPackageFetcher(PackageFetcher):
    """A package folder, or a tar/zip archive of one (read in place, never extracted)."""

    def __init__(
        self,
        path: Path,
        max_member_bytes: int = MAX_MEMBER_BYTES,
        max_total_bytes: int = MAX_ARCHIVE_BYTES,
    ) -> None:
        super().__init__()
        self.path = path
        self.base_url = LOCAL_BASE
        self.max_member = max_member_bytes
        self.max_total = max_total_bytes
        self._read_total = 0
        self._tar: tarfile.TarFile | None = None
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}  # package path -> member name
        if path.is_dir():
            return
        if not path.is_file():
            raise PackageError(Refusal(PACKAGE_UNREADABLE, "no such package folder or archive", str(path)))
        try:
            if zipfile.is_zipfile(path):
                self._zip = zipfile.ZipFile(path)  # kept open; close() ends it
                sizes = [(i.filename, i.file_size, i.is_dir()) for i in self._zip.infolist()]
            else:
                self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 (kept open; close() ends it)
                sizes = []
                for m in self._tar.getmembers():
                    if not (m.isfile() or m.isdir()):
                        # Links could point anywhere: a package has only plain files.
                        raise PackageError(Refusal(PATH_TRAVERSAL, f"member {m.name!r} is a link", str(path)))
                    sizes.append((m.name, m.size, m.isdir()))
        except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
            self.close()
            raise PackageError(
                Refusal(PACKAGE_UNREADABLE, f"not a readable package archive: {exc}", str(path))
            ) from exc
        except PackageError:
            self.close()
            raise
        self._index(sizes)

    def _index(self, sizes: list[tuple[str, int, bool]]) -> None:
        total = 0
        for name, size, is_dir in sizes:
            try:
                rel = _relative(LOCAL_BASE + name.removeprefix("./").rstrip("/"), LOCAL_BASE)
            except PackageError as exc:
                self.close()
                raise PackageError(
                    Refusal(PATH_TRAVERSAL, f"archive member {name!r}", str(self.path))
                ) from exc
            if is_dir:
                continue
            total += size
            if size > self.max_member or total > self.max_total:
                self.close()
                raise PackageError(
                    Refusal(
                        ARCHIVE_BOMB,
                        f"member {name!r} expands to {size} bytes (limits {self.max_member} per file, "
                        f"{self.max_total} in all)",
                        str(self.path),
                    )
                )
            self._members[rel] = name
        # An archive may hold the package folder itself: accept one top folder around it.
        if not any(r.startswith(("image/", "director/")) for r in self._members):
            tops = {r.split("/", 1)[0] for r in self._members}
            if len(tops) == 1:
                top = tops.pop() + "/"
                self._members = {r.removeprefix(top): n for r, n in self._members.items()}

    def _open(self, url: str) -> Iterator[bytes]:
        rel = _relative(url, self.base_url)
        if self._tar is None and self._zip is None:
            path = self.path / rel
            if not path.is_file():
                raise DownloadHTTPError(f"{self.path}: no {rel}", 404)
            return self._chunks_of_file(path)
        name = self._members.get(rel)
        if name is None:
            raise DownloadHTTPError(f"{self.path}: no {rel}", 404)
        return self._chunks_of_member(name)

    @staticmethod
    def _chunks_of_file(path: Path) -> Iterator[bytes]:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def _chunks_of_member(self, name: str) -> Iterator[bytes]:
        if self._zip is not None:
            stream = self._zip.open(name)
        else:
            assert self._tar is not None
            extracted = self._tar.extractfile(name)
            if extracted is None:
                raise DownloadHTTPError(f"{self.path}: {name} is not a file", 404)
            stream = extracted
        with stream:
            member_read = 0
            while chunk := stream.read(CHUNK):
                member_read += len(chunk)
                self._read_total += len(chunk)
                # Headers can lie (zip): count what really comes out.
                if member_read > self.max_member or self._read_total > self.max_total:
                    raise PackageError(
                        Refusal(ARCHIVE_BOMB, f"member {name!r} expands past the limit", str(self.path))
                    )
                yield chunk

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        if self._zip is not None:
            self._zip.close()
            self._zip = None


class HttpPackageFetcher(PackageFetcher):
    """A package published on an HTTP(S) server, base URL = the package folder's URL."""

    def __init__(self, base_url: str, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        super().__init__()
        scheme = urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise PackageError(Refusal(PACKAGE_UNREADABLE, "only http:// and https:// are fetched", base_url))
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout_s = timeout_s

    def _open(self, url: str) -> Iterator[bytes]:
        _relative(url, self.base_url)
        try:
            response = urllib.request.urlopen(url, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            raise DownloadHTTPError(f"{url}: {exc.reason}", exc.code) from exc
        return self._chunks(response)

    @staticmethod
    def _chunks(response: urllib.response.addinfourl) -> Iterator[bytes]:
        with response:
            while chunk := response.read(CHUNK):
                yield chunk


def open_package(source: str | Path) -> PackageFetcher:
    """The fetcher for a folder, an archive, or an ``http(s)://`` URL."""
    text = str(source)
    if text.startswith(("http://", "https://")):
        return HttpPackageFetcher(text)
    return LocalPackageFetcher(Path(source))
