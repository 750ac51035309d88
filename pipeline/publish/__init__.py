"""Publish: upload changed photos, then the feed atomically, to where Satu pulls them.

- `stage.py`: the stage (`run`, `PublishResult`): what to upload, the manifest, orphans and their guard;
- `session.py`: the retry session (reconnect and exponential backoff, each retry shown as it happens);
- `targets/`: the `Target` interface and one module per way of uploading — `local.py` (a folder),
  `ftp.py` (FTP and explicit FTPS; the one FTP module, also used by the order-file sink), `sftp.py`
  (a pinned host key). Each translates its own library's exceptions into `pipeline.errors` types.
"""

from __future__ import annotations

from pipeline.publish.stage import MANIFEST_NS, META_NS, PublishResult, feed_url, run

__all__ = ["MANIFEST_NS", "META_NS", "PublishResult", "feed_url", "run"]
