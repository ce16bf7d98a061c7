"""What one dashboard app holds while it runs, on `app.state.dashboard`: the warehouse service,
the rendered bodies it keeps, its download budget and its fitted simulator model.

Views reach it through the `DashboardDep` and `ServiceDep` dependencies, never through closures.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from iceledger.byte_budget import ByteBudgetLRU
from iceledger.serving.service import WarehouseService
from iceledger.web.guards import DownloadBudget

# Suppression audits solve a linear system over the hidden cells; this cap keeps that bounded.
PUBLIC_MAX_ROWS = 2_000
RENDERED_BODY_BYTES = 96 * 2**20
RENDER_SLOTS = 4
# Bodies smaller than this go uncompressed: gzip would save less than it costs.
GZIP_MIN_BYTES = 1024


@dataclass(frozen=True)
class Body:
    """A rendered response body, kept once: gzipped when worth compressing, else as is.

    Browsers accept gzip, so the compressed form is what is sent; the rare client that does not
    gets it decompressed on the way out. Keeping one form lets the byte budget hold several
    times more bodies than keeping both.
    """

    stored: bytes
    gzipped: bool

    @property
    def size(self) -> int:
        return len(self.stored)

    @property
    def raw(self) -> bytes:
        return gzip.decompress(self.stored) if self.gzipped else self.stored

    @classmethod
    def of(cls, raw: bytes, compress: bool) -> Body:
        if compress and len(raw) >= GZIP_MIN_BYTES:
            return cls(gzip.compress(raw, compresslevel=6), True)
        return cls(raw, False)

    def response(
        self, media_type: str, accept_encoding: str, headers: dict[str, str] | None
    ) -> Response:
        headers = {**(headers or {}), "Vary": "Accept-Encoding"}
        if self.gzipped and "gzip" in accept_encoding.lower():
            return Response(
                self.stored, media_type=media_type, headers=headers | {"Content-Encoding": "gzip"}
            )
        return Response(self.raw, media_type=media_type, headers=headers)


def body_cache(max_bytes: int) -> ByteBudgetLRU[Body]:
    """Rendered response bodies; used from the event-loop thread only."""
    return ByteBudgetLRU(max_bytes, lambda body: body.size)


@dataclass
class Dashboard:
    service: WarehouseService
    budget: DownloadBudget
    bodies: ByteBudgetLRU[Body] = field(default_factory=lambda: body_cache(RENDERED_BODY_BYTES))
    # Each rendering holds its result and its bodies at once; a burst of distinct requests is
    # rendered a few at a time, so that memory stays bounded by these, not by the clients.
    renderings: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(RENDER_SLOTS))
    # Fitted on the first request, then kept: the warehouse is read-only.
    simulator_model: Any = None
    fitting: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls,
        warehouse_path: Path | str,
        public: bool,
        k: int,
        max_rows: int,
        downloads_per_minute: float,
        download_burst: int,
    ) -> Dashboard:
        """Raises IceledgerError (one line) if the warehouse cannot be opened."""
        if public:
            max_rows = min(max_rows, PUBLIC_MAX_ROWS)
        service = WarehouseService(warehouse_path, public=public, k=k, max_rows=max_rows)
        return cls(service, DownloadBudget(downloads_per_minute, download_burst))


# async so that FastAPI does not hand them to the thread pool: they only read app.state.
async def current_dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard


async def current_service(request: Request) -> WarehouseService:
    return request.app.state.dashboard.service


DashboardDep = Annotated[Dashboard, Depends(current_dashboard)]
ServiceDep = Annotated[WarehouseService, Depends(current_service)]
