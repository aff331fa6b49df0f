"""The typeface the service's pages link to (no key needed: it is a font)."""

from __future__ import annotations

from fastapi import APIRouter, Path
from fastapi.responses import Response

from api.common.errors import ApiError, responses

router = APIRouter(prefix="/v1/typeface", tags=["pages"])


@router.get("/{name}", response_class=Response, responses=responses(404, 422),
            summary="The base font of the regulator's pages")
def typeface(name: str = Path(max_length=40, pattern=r"^[0-9a-f]{16}\.woff$")) -> Response:
    """The base font of the regulator's pages (:func:`features.typeface.base_font`); its name is
    a hash of what it is made from, so browsers keep it for a year."""
    from features.typeface import base_font

    current, data = base_font()
    if name != current:
        raise ApiError(404, "TYPEFACE_NOT_FOUND", f"no typeface {name}; the pages link to {current}", "字体文件不存在")
    return Response(data, media_type="font/woff", headers={"Cache-Control": "public, max-age=31536000, immutable"})
