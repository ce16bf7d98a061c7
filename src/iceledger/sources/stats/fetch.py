"""Download ICE's current detention-statistics workbook from its public web page.

ICE overwrites the workbook on https://www.ice.gov/detain/detention-management about every two
weeks, so a copy not fetched in time is gone (only web archives keep old versions). `fetch_stats`
reads the page, finds the workbook link(s), and saves each file under the server's own name.

Nothing already on disk is ever overwritten: identical bytes are skipped, and a re-posted workbook
with the same name but different bytes is saved beside the old one with a hash suffix. Every file is
written to a temporary name and renamed into place only when complete, so an interrupted download
never leaves a truncated workbook that a later ingest would read.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from iceledger import __version__
from iceledger.errors import IceledgerError
from iceledger.warehouse import file_sha256

DETENTION_MANAGEMENT_URL = "https://www.ice.gov/detain/detention-management"
DEFAULT_TIMEOUT_SECONDS = 60.0

# ICE names the file like FY26_detentionStats02022026.xlsx (older: FY19-detentionstats.xlsx);
# the link text usually says "Detention Statistics". Either marks the workbook among the page's
# other spreadsheets.
_STATS_NAME = re.compile(r"detention[\s_-]*stat", re.IGNORECASE)
_XLSX_MAGIC = b"PK\x03\x04"  # an .xlsx is a zip archive
_CHUNK_BYTES = 1 << 16
_USER_AGENT = f"iceledger/{__version__} (public-records research tool)"

# Called with (bytes received so far, total bytes or None) while a file downloads.
ProgressCallback = Callable[[int, int | None], None]


@dataclass(frozen=True)
class FetchedFile:
    url: str
    path: Path
    sha256: str
    size: int
    already_had: bool  # the same bytes were already in the output folder; nothing was written


@dataclass(frozen=True)
class FetchOutcome:
    """Every linked workbook is tried; one failed download does not stop the others."""

    files: list[FetchedFile]
    errors: list[IceledgerError]


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, link text)
        self._open_href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open_href = dict(attrs).get("href")
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._open_href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open_href is not None:
            self.links.append((self._open_href, " ".join("".join(self._text).split())))
            self._open_href = None


def find_workbook_links(html: str, page_url: str) -> list[str]:
    """Absolute URLs of the page's detention-statistics .xlsx links, in page order, no repeats."""
    collector = _LinkCollector()
    collector.feed(html)
    found: list[str] = []
    for href, text in collector.links:
        url = urljoin(page_url, href.strip())
        name = unquote(PurePosixPath(urlsplit(url).path).name)
        is_stats = _STATS_NAME.search(name) or _STATS_NAME.search(text)
        if name.lower().endswith(".xlsx") and is_stats and url not in found:
            found.append(url)
    return found


def fetch_stats(
    out_dir: Path,
    url: str = DETENTION_MANAGEMENT_URL,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    progress: Callable[[str], ProgressCallback] | None = None,
) -> FetchOutcome:
    """Download the workbook(s) linked from `url` (or `url` itself if it is an .xlsx) to `out_dir`.

    A problem with the page itself raises IceledgerError; a problem with one workbook is recorded
    in the outcome's errors and the remaining workbooks are still fetched.

    `progress`, if given, is called with each file's name and returns the callback that receives
    that file's byte counts.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    headers = {"User-Agent": _USER_AGENT}
    with httpx.Client(follow_redirects=True, timeout=timeout, headers=headers) as client:
        if _is_xlsx_url(url):
            workbook_urls = [url]
        else:
            page = _get(client, url)
            workbook_urls = find_workbook_links(page.text, str(page.url))
            if not workbook_urls:
                raise IceledgerError(
                    f"{url}: no detention-statistics .xlsx link found on the page; ICE may have "
                    "moved it: pass the workbook's address with --url"
                )
        outcome = FetchOutcome(files=[], errors=[])
        for workbook_url in workbook_urls:
            try:
                outcome.files.append(_download(client, workbook_url, out_dir, timeout, progress))
            except IceledgerError as exc:
                outcome.errors.append(exc)
        return outcome


def _is_xlsx_url(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".xlsx")


def _get(client: httpx.Client, url: str) -> httpx.Response:
    try:
        response = client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise _as_user_error(url, exc, client.timeout.read) from None
    return response


def _as_user_error(url: str, exc: httpx.HTTPError, timeout: float | None) -> IceledgerError:
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        return IceledgerError(f"{url}: the server answered HTTP {status} "
                              f"{exc.response.reason_phrase}")
    if isinstance(exc, httpx.TimeoutException):
        return IceledgerError(f"{url}: no answer within {timeout:g} s (timed out); try again "
                              "later or raise the timeout")
    return IceledgerError(f"{url}: cannot download: {exc.__class__.__name__}: {exc}")


def _download(
    client: httpx.Client,
    url: str,
    out_dir: Path,
    timeout: float,
    progress: Callable[[str], ProgressCallback] | None,
) -> FetchedFile:
    temp_path: Path | None = None
    try:
        with client.stream("GET", url) as response:
            response.raise_for_status()
            name = _server_file_name(response, url)
            total = _content_length(response)
            report = progress(name) if progress else None
            digest = hashlib.sha256()
            size = 0
            handle = tempfile.NamedTemporaryFile(
                dir=out_dir, prefix=f".{name}.", suffix=".part", delete=False
            )
            temp_path = Path(handle.name)
            with handle:
                for chunk in response.iter_bytes(_CHUNK_BYTES):
                    if size == 0 and not chunk.startswith(_XLSX_MAGIC):
                        raise IceledgerError(
                            f"{url}: the server did not send an .xlsx workbook (got "
                            f"{response.headers.get('content-type', 'unknown content')})"
                        )
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if report:
                        report(size, total)
                handle.flush()
                os.fsync(handle.fileno())
        if size == 0:
            raise IceledgerError(f"{url}: the server sent an empty file")
        if total is not None and size != total:
            raise IceledgerError(f"{url}: download cut short ({size:,} of {total:,} bytes)")
        sha256 = digest.hexdigest()
        existing = _same_bytes_in(out_dir, sha256, size)
        if existing is not None:
            return FetchedFile(url, existing, sha256, size, already_had=True)
        target = _free_name(out_dir / name, sha256)
        os.replace(temp_path, target)
        temp_path = None
        return FetchedFile(url, target, sha256, size, already_had=False)
    except httpx.HTTPError as exc:
        raise _as_user_error(url, exc, timeout) from None
    finally:
        if temp_path is not None:
            temp_path.unlink(missing_ok=True)


def _server_file_name(response: httpx.Response, url: str) -> str:
    disposition = response.headers.get("content-disposition")
    name = None
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        name = message.get_filename()
    if not name:
        name = unquote(PurePosixPath(urlsplit(str(response.url)).path).name)
    # Only the base name: a hostile header must not write outside the output folder.
    name = Path(name.replace("\\", "/")).name.strip()
    if not name or name.startswith("."):
        raise IceledgerError(f"{url}: the server gave no usable file name")
    return name


def _content_length(response: httpx.Response) -> int | None:
    # A compressed transfer's Content-Length counts compressed bytes, not the file's.
    if response.headers.get("content-encoding"):
        return None
    value = response.headers.get("content-length")
    return int(value) if value and value.isdecimal() else None


def _same_bytes_in(out_dir: Path, sha256: str, size: int) -> Path | None:
    for candidate in sorted(out_dir.glob("*.xlsx")):
        if candidate.stat().st_size == size and file_sha256(candidate) == sha256:
            return candidate
    return None


def _free_name(target: Path, sha256: str) -> Path:
    """The target itself, or, if another version holds that name, the name with a hash suffix.

    ICE sometimes re-posts a workbook under the same name with new figures; both versions are
    evidence, so the newer one goes beside the older one rather than over it.
    """
    if not target.exists():
        return target
    return target.with_name(f"{target.stem}-{sha256[:12]}{target.suffix}")
