"""Streaming render of the feed template into a temporary file.

The template (`templates/satu.yml.j2`) is rendered with autoescape and StrictUndefined, one block
at a time: `offers` first, straight from the product stream into a spool file (so the feed is never
held in memory and the used sections become known), then `head`, `categories` and `middle` into the
target temporary file, the spool appended, and `tail`. The caller validates the temporary file and
renames it into place. An optional `tee` receives the offer bytes as they are written to the spool,
so that a validator (`validate.OffersStreamCheck`) can check them while the rest is still rendering;
`render_feed` returns where the head, the offers and the tail lie in the file so the caller can tie
that check to the file actually written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import jinja2
from markupsafe import Markup

from pipeline.errors import PipelineError
from pipeline.feed.sanitize import cdata

BLOCKS = ("head", "categories", "middle", "offers", "tail")
BUFFER = 1 << 20
PIECES = 8192  # rendered strings of the offers block encoded (and teed) at a time (~100 kB)
DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "satu.yml.j2"


class Layout(NamedTuple):
    """Byte lengths of the rendered file's three parts: head (up to `<offers>`), the offers, the tail."""

    head: int
    offers: int
    tail: int


class Tee(Protocol):
    """Receives a copy of the offer bytes in file order."""

    def write(self, data: bytes) -> None:
        """Take the next chunk."""


def _write_offers(chunks: Iterable[str], fh: Any, tee: Tee | None) -> int:
    """Encode the rendered offer text to the spool (and the tee) in large chunks; returns the byte count.

    The template yields about a hundred small strings per offer: they are taken `PIECES` at a time
    (`islice` in C) rather than looked at one by one, which was a measurable share of the render."""
    size = 0
    it = iter(chunks)
    while batch := list(islice(it, PIECES)):
        data = "".join(batch).encode("utf-8")
        fh.write(data)
        if tee is not None:
            tee.write(data)
        size += len(data)
    return size


def _cdata(text: Any) -> Markup:
    return Markup(cdata(str(text)))


def load_template(path: Path) -> jinja2.Template:
    """The feed template with autoescape, StrictUndefined and the `cdata` filter."""
    path = Path(path)
    if not path.exists():
        if path.name == DEFAULT_TEMPLATE.name and DEFAULT_TEMPLATE.exists():
            path = DEFAULT_TEMPLATE  # settings folder without its own copy: use the shipped one
        else:
            raise PipelineError(f"feed template {path} not found (set [feed] template)")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["cdata"] = _cdata
    try:
        template = env.get_template(path.name)
    except jinja2.TemplateError as exc:
        raise PipelineError(f"feed template {path}: {exc}") from exc
    missing = [b for b in BLOCKS if b not in template.blocks]
    if missing:
        raise PipelineError(
            f"feed template {path} lacks block(s) {', '.join(missing)} "
            "(the feed is rendered block by block; see the shipped template)"
        )
    return template


def _append(src: Any, dst: Any) -> None:
    """Append a whole file: kernel-side copy where the OS offers it, else a buffered copy."""
    dst.flush()
    if hasattr(os, "copy_file_range"):
        try:
            while os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30):
                pass
            dst.seek(0, os.SEEK_END)  # the kernel moved the file offset; keep Python's view in step
            return
        except OSError:
            pass  # e.g. a filesystem without support: the buffered copy goes on from where it stopped
    shutil.copyfileobj(src, dst, BUFFER)


def render_feed(
    template: jinja2.Template,
    variables: dict[str, Any],
    offers: Iterable[Any],
    categories: Callable[[], list[Any]],
    dest: Path,
    tee: Tee | None = None,
) -> Layout:
    """Render the whole feed into `dest` (a temporary path), streaming; raises PipelineError on failure.

    `tee`, when given, gets every byte of the offers part as it is rendered. Returns the layout of `dest`.
    """
    spool = dest.with_name(dest.name + ".offers")
    try:
        with open(spool, "wb", buffering=BUFFER) as fh:
            ctx = template.new_context(dict(variables, offers=offers, categories=[]))
            offers_size = _write_offers(template.blocks["offers"](ctx), fh, tee)
        ctx = template.new_context(dict(variables, offers=(), categories=categories()))
        with open(dest, "w", encoding="utf-8", newline="\n", buffering=BUFFER) as out:
            for name in ("head", "categories", "middle"):
                out.writelines(template.blocks[name](ctx))
            out.flush()
            head_size = os.fstat(out.fileno()).st_size  # (a new file: its size is the offset)
            with open(spool, "rb") as src:
                _append(src, out.buffer)
            out.writelines(template.blocks["tail"](ctx))
            out.flush()
            os.fsync(out.fileno())
            total = os.fstat(out.fileno()).st_size
        return Layout(head_size, offers_size, total - head_size - offers_size)
    except jinja2.TemplateError as exc:
        raise PipelineError(f"feed template failed: {exc}") from exc
    finally:
        spool.unlink(missing_ok=True)
