"""Where a product photo is published: the contract between the photos stage and the feed.

The photos stage records, in local state namespace `PUBLISHED_NS`, one entry per source photo (the
file name relative to `[photos] source_dir`, exactly as the database gives it):
`{"name": "photos/ab/ab12….jpg", "ok": true}` for a processed photo (`name` is the path relative to
`[publish] remote_dir`/`local_dir`, deterministic and URL-safe), or `{"ok": false, "reason": "…"}` for
one that could not be used. The feed turns names into URLs under `[publish] public_base_url`; photos
given as http(s) URLs pass through untouched.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from pipeline.model import Photo

PUBLISHED_NS = "photos.published"


_URL_SAFE = re.compile(r"[A-Za-z0-9/\-._~]*")  # what `quote(…, safe="/-._~")` leaves as it is


def join_url(base_url: str, name: str) -> str:
    """`public_base_url` + a published relative path, with the path safely quoted."""
    path = name.lstrip("/")
    if not _URL_SAFE.fullmatch(path):  # (published names are URL-safe already: quote only the others)
        path = quote(path, safe="/-._~")
    return base_url.rstrip("/") + "/" + path


class PhotoIndex:
    """Read-only view of the published photo names, loaded once per run."""

    def __init__(self, state: Any, public_base_url: str):
        self.base_url = public_base_url
        self._entries: dict[str, dict[str, Any]] = (
            dict(state.items(PUBLISHED_NS)) if state is not None else {}
        )

    def url_for(self, photo: Photo) -> str | None:
        """The public URL of a photo, or None when it was not (or could not be) published."""
        if photo.is_url:
            return photo.file_name
        if not self.base_url.strip():  # [publish] public_base_url not set: no address Satu could use
            return None
        entry = self._entries.get(photo.file_name)
        if not entry or not entry.get("ok") or not entry.get("name"):
            return None
        return join_url(self.base_url, entry["name"])

    def reason(self, photo: Photo) -> str:
        """Why a photo has no URL (for reports)."""
        if not self.base_url.strip():
            return "[publish] public_base_url is not set"
        entry = self._entries.get(photo.file_name)
        if entry is None:
            return "not processed yet (run `photos`)"
        return str(entry.get("reason") or "unusable")
