"""`doctor`: check an installation end to end and say, per check, OK / WARN / FAIL and the fix.

Nothing is changed and nothing is created: a missing state file or inbox folder is reported, not made.
Without `online=True` no network call is made (the database is local or on the shop's own server); with
it, one cheap Satu API call and one connection to the publish target.

    checks = run(settings, online=False)
    any(c.status is Status.FAIL for c in checks)

Each check is a function returning `Check`s; the order of `CHECKS` is the order of the report.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError, SettingsError

#: free space below which a data folder is a warning, and below which it is a failure
WARN_FREE_BYTES = 1 << 30  # 1 GiB: a feed of 300 000 goods with its history and temp files needs ~1 GB
FAIL_FREE_BYTES = 100 << 20  # 100 MiB: a feed run or an order import may fail any moment

FIX_SETTINGS = "fix the listed keys in the settings file (docs/settings.md)"
FIX_RESTORE = (
    "stop the service and restore the file from the last backup, or move it (with its -wal/-shm files) "
    "aside to start a new one: see docs/troubleshooting.md#backup-and-restore"
)


class Status(StrEnum):
    """How one check came out."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, how it came out, and (when not OK) the fix."""

    name: str
    status: Status
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """JSON form of the line."""
        return {"check": self.name, "status": str(self.status), "message": self.message, "fix": self.fix}

    def line(self) -> str:
        """`OK   state      /var/state.sqlite: intact (12 keys)` (and ` — fix: …` when not OK)."""
        fix = f" — fix: {self.fix}" if self.fix and self.status is not Status.OK else ""
        return f"{self.status:<4} {self.name:<10} {self.message}{fix}"


def ok(name: str, message: str) -> Check:
    """An OK line."""
    return Check(name, Status.OK, message)


def warn(name: str, message: str, fix: str) -> Check:
    """A WARN line: it works, but should be looked at."""
    return Check(name, Status.WARN, message, fix)


def fail(name: str, message: str, fix: str) -> Check:
    """A FAIL line: something the program needs does not work."""
    return Check(name, Status.FAIL, message, fix)


def settings_failed(exc: SettingsError) -> list[Check]:
    """The report when the settings themselves do not load: one FAIL per problem (nothing else can be
    checked without them)."""
    return list(_problems("settings", exc))


def _problems(name: str, exc: SettingsError) -> Iterator[Check]:
    """One FAIL per settings problem: the key and what is wrong, then its own fix."""
    for p in exc.problems:
        yield fail(name, f"{p.key}: {p.message}", p.fix or FIX_SETTINGS)


# --- the checks ------------------------------------------------------------------------------------------


def check_settings(settings: Any, online: bool) -> Iterator[Check]:
    """Which file is used, and the warnings the settings raise (a token over plain http, …)."""
    from pipeline.settings_checks import warnings

    yield ok("settings", f"{settings.source or '(built-in defaults, demo)'}: loaded, no errors")
    for problem in warnings(settings):
        yield warn("settings", f"{problem.key}: {problem.message}", problem.fix)


def check_database(settings: Any, online: bool) -> Iterator[Check]:
    """The catalog source opens and the SQL mapping runs against it (catalog queries, and the order
    statements when orders go into the database): the importer's own start-up check."""
    t = settings.torgsoft
    if t.source == "tsgoods":
        yield from _tsgoods(settings)
        return
    from pipeline.torgsoft import db
    from pipeline.torgsoft.connection import connect
    from pipeline.torgsoft.mapping import CATALOG_QUERIES, Mapping

    target = t.dsn or str(t.database)
    try:
        con = connect(settings)
    except SettingsError as exc:
        yield from _problems("database", exc)
        return
    except PipelineError as exc:
        yield fail(
            "database", f"cannot connect: {exc}", "check torgsoft.dsn / torgsoft.database and the server"
        )
        return
    try:
        yield ok("database", f"{target}: connected")
        yield _mapping_check("catalog SQL", lambda: Mapping(t.mapping_dir).check(con, list(CATALOG_QUERIES)))
        if settings.orders.sink == "database":
            from pipeline.orders.order_sql import check_mapping

            yield _mapping_check("order SQL", lambda: check_mapping(con, Mapping(t.mapping_dir)))
    finally:
        try:
            con.close()
        except db.driver_errors():  # (closing a connection that already broke)
            pass


def _mapping_check(what: str, check: Callable[[], None]) -> Check:
    try:
        check()
    except SettingsError as exc:
        problems = "; ".join(str(p) for p in exc.problems)
        return fail(
            "mapping", f"{what}: {problems}", "fix the SQL in [torgsoft] mapping_dir (`run.py discover`)"
        )
    except PipelineError as exc:
        return fail("mapping", f"{what}: {exc}", "check the database and the SQL mapping")
    return ok("mapping", f"{what}: every statement runs and delivers its columns")


def _tsgoods(settings: Any) -> Iterator[Check]:
    path = settings.torgsoft.tsgoods_file
    if path is None or not Path(path).is_file():
        yield fail("database", f"TSGoods file {path or '(not set)'} not found", "set torgsoft.tsgoods_file")
    else:
        yield ok("database", f"{path}: TSGoods export present ({Path(path).stat().st_size} bytes)")


def check_state_files(settings: Any, online: bool) -> Iterator[Check]:
    """The state and the journal: present, intact (`PRAGMA quick_check`), private (0600)."""
    j = settings.journal
    state, journal = Path(j.state_path), Path(j.path)
    lost = _lost_state(state, journal)
    if lost:
        yield fail("state", lost, FIX_RESTORE)
    else:
        yield from _sqlite_file("state", state, "cursors, published hashes, outboxes")
    yield from _sqlite_file("journal", journal, "the event journal")
    yield from _private_files("journal", [Path(j.log_file)])  # the log names customers too


def _lost_state(state: Path, journal: Path) -> str:
    """A missing state file where the journal shows one existed (a published feed, a status baseline):
    not a first run but lost state — the runs would start over silently."""
    if state.exists() or not journal.is_file():
        return ""
    from pipeline.journal import Journal
    from pipeline.orders.status import BASELINE_MARK
    from pipeline.orders.status import STAGE as STATUS

    witness = Journal(journal)
    try:
        for stage, marker in (("feed", "feed published"), (STATUS, BASELINE_MARK)):
            seen = next(iter(witness.search(stage=stage, grep=marker, limit=1)), None)
            if seen is not None:
                return (
                    f"{state} does not exist, but the journal shows that {stage} recorded "
                    f"{marker!r} on {seen.ts}: the state was lost (deleted or moved), not a first run"
                )
    except (PipelineError, sqlite3.DatabaseError):  # a damaged journal is no witness: its own line says so
        return ""
    finally:
        witness.close()
    return ""


def _sqlite_file(name: str, path: Path, what: str) -> Iterator[Check]:
    if not path.exists():
        yield warn(
            name,
            f"{path} does not exist ({what}); a new, empty one is started by the next run",
            "nothing on a first run; otherwise restore it from the backup (docs/troubleshooting.md#backup-and-restore)",
        )
        return
    if not path.is_file():
        yield fail(
            name, f"{path} is not a file", f"move it aside; [journal] names where the {name} file goes"
        )
        return
    try:
        detail = _quick_check(path)
    except sqlite3.OperationalError as exc:  # not opened at all (permissions, a locked folder): not damage
        yield fail(
            name, f"{path} cannot be opened: {exc}", "the service's user must be able to read and write it"
        )
        return
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        yield fail(name, f"{path} is damaged: {exc}", FIX_RESTORE)
        return
    if detail != "ok":
        yield fail(name, f"{path} is damaged: {detail}", FIX_RESTORE)
        return
    yield ok(name, f"{path}: intact ({path.stat().st_size} bytes)")
    yield from _private_files(name, [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))])


def _quick_check(path: Path) -> str:
    """SQLite's own check of every page (read only; the service may go on writing meanwhile)."""
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("PRAGMA quick_check(20)").fetchall()
    finally:
        con.close()
    return "; ".join(str(r[0]) for r in rows)


def _loose(path: Path) -> bool:
    """Readable or writable by others than the owner (POSIX)."""
    return os.name != "nt" and bool(path.lstat().st_mode & 0o077)


def _private_files(name: str, paths: list[Path]) -> Iterator[Check]:
    loose = [p for p in paths if p.is_file() and _loose(p)]
    if loose:
        names = ", ".join(str(p) for p in loose[:5]) + (" …" if len(loose) > 5 else "")
        yield warn(
            name,
            f"{len(loose)} file(s) with personal data readable by others: {names}",
            f"chmod 600 {' '.join(str(p) for p in loose[:5])}",
        )


def check_inbox(settings: Any, online: bool) -> Iterator[Check]:
    """The inbox and its folders: there, writable, private (folders 0700, order files 0600)."""
    root = Path(settings.orders.inbox)
    if root.exists() and not root.is_dir():
        yield fail(
            "inbox", f"{root} is not a folder", "set orders.inbox to a folder (or move the file aside)"
        )
        return
    if not root.is_dir():
        parent = next((p for p in root.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK | os.X_OK):
            yield fail(
                "inbox", f"{root} does not exist and cannot be created", "create it or set orders.inbox"
            )
        else:
            yield warn(
                "inbox",
                f"{root} does not exist yet",
                "nothing: the first import creates it; or check orders.inbox",
            )
        return
    folders = [root, *(root / n for n in ("processing", "done", "quarantine"))]
    missing = [f.name for f in folders[1:] if not f.is_dir()]
    unwritable = [str(f) for f in folders if f.is_dir() and not os.access(f, os.W_OK | os.X_OK)]
    if unwritable:
        yield fail("inbox", f"not writable: {', '.join(unwritable)}", "give the service's user write access")
        return
    if missing:
        yield warn("inbox", f"{root}: {', '.join(missing)} missing", "nothing: the next import creates them")
    else:
        yield ok("inbox", f"{root}: inbox, processing, done and quarantine writable")
    loose_dirs = [f for f in folders if f.is_dir() and _loose(f)]
    if loose_dirs:
        yield warn(
            "inbox",
            f"folders open to others: {', '.join(str(f) for f in loose_dirs)}",
            f"chmod 700 {' '.join(str(f) for f in loose_dirs)}",
        )
    order_files = [p for f in folders if f.is_dir() for p in _files(f) if not p.name.startswith(".owner-")]
    yield from _private_files("inbox", order_files)  # (an importer's owner lock holds no personal data)
    quarantined = (
        [p for p in _files(folders[3]) if not p.name.endswith(".reason.txt")] if folders[3].is_dir() else []
    )
    if quarantined:
        yield warn(
            "inbox",
            f"{len(quarantined)} file(s) in quarantine",
            "read their .reason.txt; fix the cause, move the file back (docs/troubleshooting.md#quarantine)",
        )


def _files(folder: Path) -> list[Path]:
    out = []
    with os.scandir(folder) as it:
        for entry in it:
            if entry.is_file(follow_symlinks=False):
                out.append(Path(entry.path))
    return out


def check_disk(settings: Any, online: bool) -> Iterator[Check]:
    """Free space where the program writes (state, journal, inbox, feed, photo cache), once per disk."""
    places = {  # the folders written to (of a file setting: the folder it lives in)
        "state": Path(settings.journal.state_path).parent,
        "journal": Path(settings.journal.path).parent,
        "inbox": Path(settings.orders.inbox),
        "feed": Path(settings.feed.output).parent,
        "photos": Path(settings.photos.cache_dir),
    }
    by_device: dict[int, tuple[Path, list[str]]] = {}
    for label, value in places.items():
        folder = next(p for p in (value.absolute(), *value.absolute().parents) if p.exists())
        dev = folder.stat().st_dev
        by_device.setdefault(dev, (folder, []))[1].append(label)
    for folder, labels in by_device.values():
        free = shutil.disk_usage(folder).free
        text = f"{_gb(free)} free at {folder} ({', '.join(labels)})"
        if free < FAIL_FREE_BYTES:
            yield fail("disk", text, "free space on that disk now: writes will fail")
        elif free < WARN_FREE_BYTES:
            yield warn("disk", text, "free space (feeds/history, photos_cache and inbox/done can be trimmed)")
        else:
            yield ok("disk", text)


def _gb(n: int) -> str:
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MB"


def check_satu(settings: Any, online: bool) -> Iterator[Check]:
    """The Satu token variable is set (and, online, accepted by one cheap API call)."""
    var = settings.satu.token_env
    token = settings.secret("satu.token_env", required=False)
    if not token:
        needs = "pushes, order download and status push cannot run"
        fix = f"export {var}=<token from the Satu cabinet> for the service (satu.token_env)"
        yield (fail if settings.satu.push else warn)("satu", f"{var} is not set: {needs}", fix)
        return
    if not online:
        yield ok("satu", f"{var} is set (not tried: add --online to try it)")
        return
    from pipeline.satu.client import SatuClient

    try:
        with SatuClient.from_settings(settings) as client:
            next(iter(client.iter_products(limit=1)), None)
    except SettingsError as exc:
        yield from _problems("satu", exc)
        return
    except PipelineError as exc:
        yield fail("satu", f"{settings.satu.base_url}: {exc}", f"check {var} and satu.base_url")
        return
    yield ok("satu", f"{settings.satu.base_url}: the token is accepted")


def check_publish(settings: Any, online: bool) -> Iterator[Check]:
    """The publish target answers and lists its folder (online only: it is a network call)."""
    p = settings.publish
    if not online:
        yield ok("publish", f"{p.target} target configured (not tried: add --online to connect)")
        return
    from pipeline.publish.targets import make_target

    try:
        target = make_target(settings)
        try:
            target.connect()
            files = target.listing()
        finally:
            target.close()
    except SettingsError as exc:
        yield from _problems("publish", exc)
        return
    except PipelineError as exc:
        yield fail(
            "publish", f"{p.target}: {exc}", "check [publish] host, port, user, password_env and remote_dir"
        )
        return
    yield ok("publish", f"{p.target}: connected, {len(files)} file(s) there")


CHECKS: tuple[Callable[[Any, bool], Iterator[Check]], ...] = (
    check_settings,
    check_database,
    check_state_files,
    check_inbox,
    check_disk,
    check_satu,
    check_publish,
)


def run(settings: Any, *, online: bool = False) -> list[Check]:
    """Every check, in report order."""
    out: list[Check] = []
    for check in CHECKS:
        out.extend(check(settings, online))
    return out


def failed(checks: list[Check]) -> bool:
    """True when any check failed (the command's exit code 1)."""
    return any(c.status is Status.FAIL for c in checks)


def summary(checks: list[Check]) -> str:
    """`7 OK, 1 WARN, 0 FAIL`."""
    counts = {s: sum(c.status is s for c in checks) for s in Status}
    return ", ".join(f"{n} {s}" for s, n in counts.items())
