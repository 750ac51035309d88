"""Status push against the Satu sandbox over real HTTP and the embedded Torgsoft database."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipeline.devtools.demo_data import bulk_insert
from pipeline.errors import SettingsError
from pipeline.journal import Journal
from pipeline.orders import status as st
from pipeline.settings import Settings
from pipeline.state import State
from pipeline.torgsoft.connection import connect
from tests.conftest import make_settings

TOKEN_ENV = "TEST_STATUS_SATU_TOKEN"
SET_STATUS = "POST /orders/set_status"
SAVE_TTN = "POST /delivery/save_declaration_id"
ORDER_COLUMNS = (
    "ID",
    "DOC_NUMBER",
    "DOC_DATE",
    "ACCOUNTING_CENTER_ID",
    "STATUS",
    "IS_PAID",
    "TTN",
    "TOTAL",
    "EXTERNAL_SOURCE",
    "EXTERNAL_ID",
)


# --- against the sandbox and the embedded database ----------------------------------------------------


@pytest.fixture()
def sandbox(tmp_path: Path):
    from pipeline.devtools.sandbox import SandboxServer

    server = SandboxServer(tmp_path / "sandbox").start()
    yield server
    server.stop()


class Env:
    """Settings + journal + state for one test, with helpers to change Torgsoft orders."""

    def __init__(self, settings: Settings, sandbox):
        self.settings = settings
        self.sandbox = sandbox
        self.journal = Journal.from_settings(settings)
        self.state = State.from_settings(settings)
        self._next_id = 1

    def configure(self, **status: object) -> None:
        self.settings = self.settings.replace(status=dataclasses.replace(self.settings.status, **status))

    def satu_orders(self, n: int) -> list[int]:
        """Create n pending orders on the sandbox; return their ids."""
        from pipeline.devtools.sandbox import generate_orders

        orders = generate_orders(n, seed=self._next_id)
        for o in orders:
            o.update(
                status="pending",
                status_name="Новый",
                cancellation=None,
                payment_data={"type": "cash", "status": "unpaid"},
                delivery_provider_data={
                    **(o.get("delivery_provider_data") or {}),
                    "declaration_number": None,
                },
            )
        return [o["id"] for o in self.sandbox.create_orders(orders=orders)]

    def add(self, external_id: object, status: int = 0, paid: bool = False, ttn: str | None = None) -> None:
        """Insert a Torgsoft order that came from Satu (as the importer would)."""
        con = connect(self.settings)
        try:
            bulk_insert(
                con,
                "CUSTOMER_ORDER",
                ORDER_COLUMNS,
                [
                    (
                        self._next_id,
                        f"S-{self._next_id}",
                        datetime(2026, 11, 1, 10),
                        1,
                        status,
                        int(paid),
                        ttn,
                        0,
                        "satu",
                        str(external_id),
                    )
                ],
            )
        finally:
            con.close()
        self._next_id += 1

    def update(self, external_id: object, **columns: object) -> None:
        """Change an order the way the shop would in Torgsoft (UPDATE; the trigger bumps CHANGED_AT)."""
        con = connect(self.settings)
        try:
            sets = ", ".join(f"{k} = ?" for k in columns)
            con.cursor().execute(
                f"UPDATE CUSTOMER_ORDER SET {sets} WHERE EXTERNAL_SOURCE = 'satu' AND EXTERNAL_ID = ?",
                (*columns.values(), str(external_id)),
            )
            con.commit()
        finally:
            con.close()

    def run(self, **kwargs) -> st.StatusResult:
        return st.run(self.settings, journal=self.journal, state=self.state, **kwargs)

    def satu_status(self, oid: int) -> str:
        return self.sandbox.order(oid)["status"]

    def calls(self, key: str) -> int:
        return self.sandbox.calls.get(key, 0)

    def events(self, **filters) -> list:
        return list(self.journal.search(stage="status", **filters))

    def close(self) -> None:
        self.journal.close()
        self.state.close()


@pytest.fixture()
def env(empty_db: Settings, sandbox, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(TOKEN_ENV, sandbox.token)
    settings = make_settings(
        empty_db.base_dir,
        satu={"base_url": sandbox.url, "token_env": TOKEN_ENV, "max_retries": 2},
        status={"retry_seconds": 0, "carrier": "kazpost"},
    )
    e = Env(settings, sandbox)
    yield e
    e.close()


def test_first_run_takes_a_baseline_and_sends_nothing(env: Env):
    a, b, c = env.satu_orders(3)
    env.add(a, status=1)
    env.add(b, status=2, paid=True, ttn="KZ100")
    env.add(c, status=4)
    result = env.run()
    assert (result.baseline, result.checked, result.pushed, result.ok) == (3, 3, 0, True)
    assert env.calls(SET_STATUS) == env.calls(SAVE_TTN) == 0
    assert [env.satu_status(i) for i in (a, b, c)] == ["pending"] * 3
    assert any("baseline taken" in e.message for e in env.events())
    # Nothing changed since the baseline: still nothing sent.
    again = env.run()
    assert (again.baseline, again.changed, again.pushed) == (0, 0, 0)
    assert env.calls(SET_STATUS) == 0
    # A real change after the baseline goes out.
    env.update(a, STATUS=3)
    assert env.run().pushed == 1
    assert env.satu_status(a) == "delivered"
    assert env.satu_status(b) == "pending"


def test_changes_are_pushed_confirmed_journaled_and_not_resent(env: Env):
    ids = env.satu_orders(5)
    for oid in ids:
        env.add(oid)
    env.run()  # baseline
    a, b, c, d, e = ids
    env.update(a, STATUS=1)
    env.update(b, IS_PAID=1)
    env.update(c, STATUS=2, IS_PAID=1)
    env.update(d, STATUS=4, IS_PAID=1)
    result = env.run()
    assert (result.changed, result.pushed, result.failed, result.pending, result.ok) == (4, 4, 0, 0, True)
    assert [env.satu_status(i) for i in ids] == ["received", "paid", "delivered", "canceled", "pending"]
    assert env.sandbox.order(d)["cancellation"] == {"title": "Заказ отменён магазином", "initiator": "seller"}
    assert env.sandbox.cancellation_reasons[d] == "another"
    # one call per distinct status (batched), and every confirmation journaled with the order id
    assert env.calls(SET_STATUS) == 4
    for oid in (a, b, c, d):
        assert any("status set on Satu" in ev.message for ev in env.events(order_id=oid))
    # unchanged orders are not sent again; a change that maps to the same status is not sent either
    env.update(a, TTN=None, COMMENT_TEXT="call first")
    env.update(c, STATUS=3)  # delivered → delivered
    again = env.run()
    assert again.pushed == 0 and env.calls(SET_STATUS) == 4
    # paid → accepted-but-unpaid is a real change in Torgsoft: Satu follows
    env.update(b, IS_PAID=0, STATUS=1)
    assert env.run().pushed == 1 and env.satu_status(b) == "received"


def test_cancellation_reason_and_text_from_settings(env: Env):
    a, b = env.satu_orders(2)
    env.add(a)
    env.add(b)
    env.run()
    env.configure(cancellation_reason="buyers_request")
    env.update(a, STATUS=4)
    assert env.run().pushed == 1
    assert env.sandbox.cancellation_reasons[a] == "buyers_request"
    env.configure(cancellation_reason="price_changed", cancellation_text="Цена изменилась у поставщика")
    env.update(b, STATUS=4)
    assert env.run().pushed == 1
    assert env.sandbox.cancellation_reasons[b] == "price_changed"
    assert env.sandbox.order(b)["cancellation"] == {
        "title": "Цена изменилась у поставщика",
        "initiator": "seller",
    }


def test_waybill_numbers_go_out_with_the_carrier(env: Env):
    a, b = env.satu_orders(2)
    env.add(a, status=1)
    env.add(b, status=1)
    env.run()
    env.update(a, STATUS=2, TTN="KZ-TTN-0001")
    result = env.run()
    assert (result.pushed, result.waybills) == (1, 1)
    provider = env.sandbox.order(a)["delivery_provider_data"]
    assert (provider["declaration_number"], provider["provider"]) == ("KZ-TTN-0001", "kazpost")
    assert env.run().waybills == 0 and env.calls(SAVE_TTN) == 1  # not resent
    # No carrier configured: nothing sent, one warning naming the orders.
    env.configure(carrier="")
    env.update(a, TTN="KZ-TTN-0002")
    env.update(b, TTN="KZ-TTN-0003")
    result = env.run()
    assert result.waybills == 0 and env.calls(SAVE_TTN) == 1
    warnings = [ev for ev in env.events(level="warning") if "carrier is empty" in ev.message]
    assert len(warnings) == 1 and sorted(warnings[0].data["orders"]) == sorted([str(a), str(b)])


def test_unknown_order_ids_fail_alone_and_are_parked(env: Env):
    (known,) = env.satu_orders(1)
    # Without the read-before-write check the unknown id goes into the same set_status call.
    env.configure(max_attempts=3, verify_before_push=False)
    env.add(known)
    env.add(987654321)  # no such order on Satu
    env.add("not-a-number")
    env.run()
    env.update(known, STATUS=1, TTN="KZ-1")
    env.update(987654321, STATUS=1, TTN="KZ-2")
    env.update("not-a-number", STATUS=1)
    first = env.run()
    # the known order is confirmed although it shared the set_status call with the unknown one
    assert env.satu_status(known) == "received" and first.pushed == 1 and first.waybills == 1
    assert first.failed == 2 and first.ok is False and first.pending == 2  # unknown: status + waybill
    state = env.state.get(st.NS_ORDERS, "987654321")
    assert state.get("status") is None and state.get("ttn") is None  # not in processed_ids: not confirmed
    assert any(
        e.level == "error" and "not a positive number" in e.message
        for e in env.events(order_id="not-a-number")
    )
    second = env.run()
    assert second.failed == 2 and second.parked == 0
    third = env.run()
    assert third.parked == 2 and third.pending == 0
    errors = [
        e for e in env.events(order_id=987654321, level="error") if "given up after 3 attempts" in e.message
    ]
    assert len(errors) == 2
    assert env.state.get(st.NS_PARKED, f"{st.KIND_STATUS}:987654321")["attempts"] == 3
    calls = env.calls(SET_STATUS)
    fourth = env.run()
    assert (fourth.failed, fourth.pushed) == (0, 0) and env.calls(SET_STATUS) == calls  # no longer retried


def test_transient_faults_are_retried_by_the_client(env: Env):
    a, b = env.satu_orders(2)
    env.add(a)
    env.add(b)
    env.run()
    env.update(a, STATUS=1)
    env.update(b, STATUS=1)
    env.sandbox.fail_next(1, "500", path="/orders/set_status")
    env.sandbox.fail_next(1, "429", path="/orders/set_status")
    result = env.run()
    assert (result.pushed, result.failed, result.ok) == (2, 0, True)
    assert env.sandbox.pending_faults() == 0


def test_satu_down_keeps_pushes_in_the_outbox_for_the_next_run(env: Env):
    a, b = env.satu_orders(2)
    env.add(a)
    env.add(b, status=1)
    env.run()
    env.update(a, IS_PAID=1)
    env.update(b, TTN="KZ-77")
    env.sandbox.fail_next(3, "503", path="/orders/set_status")  # more than max_retries=2 can absorb
    result = env.run()
    assert (result.pushed, result.waybills, result.ok) == (0, 0, False)
    assert result.pending == 2  # the waybill was not even tried while Satu is down
    assert env.satu_status(a) == "pending"
    assert env.state.get(st.NS_ORDERS, str(a)).get("status") is None
    assert any("unreachable" in e.message for e in env.events(level="warning"))
    # Torgsoft did not change again: the outbox alone carries the retry.
    retry = env.run()
    assert (retry.changed, retry.pushed, retry.waybills, retry.pending, retry.ok) == (0, 1, 1, 0, True)
    assert env.satu_status(a) == "paid"
    assert env.sandbox.order(b)["delivery_provider_data"]["declaration_number"] == "KZ-77"


def test_backoff_delays_the_retry(env: Env):
    (a,) = env.satu_orders(1)
    env.add(a)
    env.run()
    env.configure(retry_seconds=3600)
    env.update(a, STATUS=1)
    env.sandbox.fail_next(1, "200-error", path="/orders/set_status")
    assert env.run().failed == 1
    later = env.run()  # not due yet: nothing sent, still queued
    assert (later.pushed, later.failed, later.pending) == (0, 0, 1)
    assert env.calls(SET_STATUS) == 0


def test_200_with_error_on_a_batch_falls_back_to_one_by_one(env: Env):
    a, b, c = env.satu_orders(3)
    for oid in (a, b, c):
        env.add(oid)
    env.run()
    for oid in (a, b, c):
        env.update(oid, STATUS=1)
    env.sandbox.fail_next(1, "200-error", path="/orders/set_status")
    result = env.run()
    assert (result.pushed, result.failed) == (3, 0)
    assert any("one by one" in e.message for e in env.events(level="warning"))
    assert {env.satu_status(i) for i in (a, b, c)} == {"received"}


def test_200_with_error_on_one_order_is_retried_next_run(env: Env):
    (a,) = env.satu_orders(1)
    env.add(a, status=1)
    env.run()
    env.update(a, TTN="KZ-5")
    env.sandbox.fail_next(1, "200-error", path="/delivery/save_declaration_id")
    first = env.run()
    assert (first.waybills, first.failed, first.pending) == (0, 1, 1)
    assert env.state.get(st.NS_ORDERS, str(a)).get("ttn") is None
    second = env.run()
    assert (second.waybills, second.pending) == (1, 0)


def test_bad_token_stops_the_push_without_counting_against_orders(env: Env, monkeypatch: pytest.MonkeyPatch):
    (a,) = env.satu_orders(1)
    env.add(a)
    env.run()
    env.update(a, STATUS=1)
    monkeypatch.setenv(TOKEN_ENV, "wrong-token")
    from pipeline.errors import AuthError

    with pytest.raises(AuthError):  # raised, not swallowed: the notifier's token alert fires (issue 11)
        env.run()
    assert env.state.outbox_count(st.KIND_STATUS) == 1  # still queued, not counted against the order
    assert any("token" in e.message for e in env.events(level="error"))
    monkeypatch.setenv(TOKEN_ENV, env.sandbox.token)
    assert env.run().pushed == 1


def test_late_commit_within_the_overlap_is_still_seen(env: Env):
    a, b = env.satu_orders(2)
    env.add(a)
    env.add(b)
    env.run()
    env.update(a, STATUS=1)
    assert env.run().pushed == 1
    cursor = datetime.fromisoformat(env.state.get(st.NS_META, "cursor"))
    # A transaction that stamped CHANGED_AT before the cursor but committed after our read.
    env.update(b, STATUS=1, CHANGED_AT=cursor - timedelta(minutes=5))
    result = env.run()
    assert result.pushed == 1 and env.satu_status(b) == "received"
    # The overlap re-reads a, but its hash is unchanged: not sent again.
    assert result.checked == 2 and result.changed == 1


def test_mapping_without_changed_at_detects_by_hash(env: Env, tmp_path: Path):
    mdir = tmp_path / "mapping"
    mdir.mkdir()
    (mdir / "orders_for_status.sql").write_text(
        "SELECT EXTERNAL_ID AS external_id, STATUS AS status, IS_PAID AS is_paid, TTN AS ttn\n"
        "FROM CUSTOMER_ORDER WHERE EXTERNAL_SOURCE = :source",
        encoding="utf-8",
    )
    env.settings = env.settings.replace(torgsoft=dataclasses.replace(env.settings.torgsoft, mapping_dir=mdir))
    a, b = env.satu_orders(2)
    env.add(a)
    env.add(b)
    env.run()
    assert env.state.get(st.NS_META, "cursor") is None
    env.update(a, STATUS=4, CHANGED_AT=datetime(2000, 1, 1))  # change time is not looked at
    result = env.run()
    assert (result.checked, result.changed, result.pushed) == (2, 1, 1)
    assert env.satu_status(a) == "canceled"


def test_missing_alias_is_a_settings_error(env: Env, tmp_path: Path):
    mdir = tmp_path / "mapping"
    mdir.mkdir()
    (mdir / "orders_for_status.sql").write_text(
        "SELECT EXTERNAL_ID AS external_id, STATUS AS status FROM CUSTOMER_ORDER", encoding="utf-8"
    )
    env.settings = env.settings.replace(torgsoft=dataclasses.replace(env.settings.torgsoft, mapping_dir=mdir))
    with pytest.raises(SettingsError) as exc:
        env.run()
    assert "result column 'is_paid' is missing" in str(exc.value)


def test_database_down_still_pushes_the_outbox(env: Env):
    (a,) = env.satu_orders(1)
    env.add(a)
    env.run()
    env.update(a, STATUS=1)
    env.sandbox.fail_next(3, "500", path="/orders/set_status")
    assert env.run().pending == 1
    env.settings = env.settings.replace(
        torgsoft=dataclasses.replace(env.settings.torgsoft, database=env.settings.base_dir / "gone.fdb")
    )
    result = env.run()
    assert result.ok is False and result.pushed == 1 and env.satu_status(a) == "received"
    assert any("cannot read Torgsoft orders" in e.message for e in env.events(level="error"))


def test_rebaseline_drops_queued_writes(env: Env):
    (a,) = env.satu_orders(1)
    env.add(a)
    env.run()
    env.update(a, STATUS=1)
    env.sandbox.fail_next(3, "500", path="/orders/set_status")
    assert env.run().pending == 1
    result = env.run(baseline=True)
    assert result.baseline == 1 and env.state.outbox_count(st.KIND_STATUS) == 0
    assert env.run().pushed == 0 and env.satu_status(a) == "pending"


def test_disabled_does_nothing(env: Env):
    env.configure(enabled=False)
    result = env.run()
    assert result.ok and result.baseline == 0 and env.state.get(st.NS_META, "baseline") is None


def test_cli_status_push(env: Env, tmp_path: Path):
    from click.testing import CliRunner

    from pipeline.cli import cli

    (a,) = env.satu_orders(1)
    env.add(a)
    s = env.settings
    path = tmp_path / "cli.toml"
    path.write_text(
        f"""
[torgsoft]
database = "{s.torgsoft.database}"
[satu]
base_url = "{s.satu.base_url}"
token_env = "{TOKEN_ENV}"
[status]
retry_seconds = 0
[journal]
path = "{s.journal.path}"
log_file = "{s.journal.log_file}"
state_path = "{tmp_path / "cli-state.sqlite"}"
""",
        encoding="utf-8",
    )
    runner = CliRunner()
    out = runner.invoke(cli, ["--settings", str(path), "status", "push"])
    assert out.exit_code == 0, out.output
    assert "Baseline taken: 1" in out.output
    env.update(a, STATUS=1)
    out = runner.invoke(cli, ["--settings", str(path), "status", "push", "--json"])
    assert out.exit_code == 0, out.output
    assert '"pushed": 1' in out.output
    out = runner.invoke(cli, ["--settings", str(path), "--set", "status.accepted=pending", "status", "push"])
    assert out.exit_code == 2 and "pending" in out.output


def test_verification_spots_unknown_ids_before_writing(env: Env):
    (known,) = env.satu_orders(1)
    env.add(known)
    env.add(987654321)
    env.run()
    env.update(known, STATUS=1)
    env.update(987654321, STATUS=1)
    result = env.run()
    assert (result.pushed, result.failed) == (1, 1)
    assert any(
        "order not found on Satu (unknown order id)" in e.message
        for e in env.events(order_id=987654321, level="warning")
    )
    assert env.calls(SET_STATUS) == 1  # only the known order was written


def test_changes_that_came_from_satu_are_not_echoed_back(env: Env):
    a, b, c = env.satu_orders(3)
    for oid in (a, b, c):
        env.add(oid)
    env.run()
    # The customer cancels on Satu, Satu takes a payment and a carrier attaches a waybill; the order
    # importer copies all that into Torgsoft (simulated here with the same UPDATEs).
    env.sandbox.modify_order(
        a, status="canceled", cancellation={"reason": "buyers_request", "title": "Передумал"}
    )
    env.sandbox.modify_order(b, status="received", payment_data={"type": "prosale", "status": "paid"})
    env.sandbox.modify_order(
        c, status="received", delivery_provider_data={"provider": "kazpost", "declaration_number": "KZ-9"}
    )
    env.update(a, STATUS=4)
    env.update(b, STATUS=1, IS_PAID=1)
    env.update(c, STATUS=1, TTN="KZ-9")
    result = env.run()
    assert (result.changed, result.pushed, result.waybills, result.already, result.failed) == (3, 0, 0, 4, 0)
    assert env.calls(SET_STATUS) == 0 and env.calls(SAVE_TTN) == 0
    assert env.sandbox.order(a)["cancellation"] == {"reason": "buyers_request", "title": "Передумал"}
    assert env.satu_status(b) == "received"
    assert any("Satu already has status canceled" in e.message for e in env.events(order_id=a))
    # Recorded as Satu's state: a later real change in Torgsoft still goes out.
    env.update(c, STATUS=3)
    assert env.run().pushed == 1 and env.satu_status(c) == "delivered"


def test_a_refused_token_is_raised_as_auth_error_and_raises_the_token_alert(env: Env, monkeypatch):
    """The status push meets an expired token: it keeps the change queued and raises an `AuthError`
    (not swallowed into its result), so the notifier's one token alert fires for this stage too."""
    from pipeline.errors import AuthError
    from pipeline.service import Service, Step, _status

    ids = env.satu_orders(2)
    for oid in ids:
        env.add(oid)
    env.run()  # baseline
    env.update(ids[0], STATUS=1)
    monkeypatch.setenv(TOKEN_ENV, "expired-token")
    with pytest.raises(AuthError):
        env.run()
    assert env.satu_status(ids[0]) == "pending" and env.state.outbox_count(st.KIND_STATUS) == 1
    assert any("refused the token" in e.message for e in env.events(level="error"))
    # Through the service's orders job: the failure is kept by type and the alert names the stage.
    from pipeline.service import Job

    service = Service(env.settings, [Job("orders", 60, [Step("status", _status)])], watcher=False, echo=None)
    report = service.run_job(service.jobs[0])
    assert isinstance(report.errors["status"], AuthError)
    alerts = list(service.journal.search(stage="notify", grep="Satu API token expired"))
    assert alerts and alerts[0].data["about_stage"] == "status"
    # A new token: the queued change goes out and the alert resolves.
    monkeypatch.setenv(TOKEN_ENV, env.sandbox.token)
    report = service.run_job(service.jobs[0])
    assert not report.errors and env.satu_status(ids[0]) == "received"
    assert list(service.journal.search(stage="notify", grep="resolved: Satu API token"))


def test_empty_processed_ids_means_already_there_and_is_confirmed_after_a_re_read(env: Env):
    a, b = env.satu_orders(2)
    env.add(a)
    env.add(b)
    env.run()  # baseline
    # Without the read-before-write check the write goes out; Satu already shows it (the manager
    # accepted the order in the cabinet) and answers an empty processed_ids without an error.
    env.configure(verify_before_push=False, max_attempts=1)
    env.sandbox.modify_order(a, status="received")
    env.update(a, STATUS=1)
    env.update(b, STATUS=1)
    result = env.run()
    assert (result.pushed, result.already, result.failed, result.parked, result.ok) == (1, 1, 0, 0, True)
    assert any("already at received or a later status" in e.message for e in env.events(order_id=a))
    calls = env.calls(SET_STATUS)
    assert env.run().pushed == 0 and env.calls(SET_STATUS) == calls  # confirmed: not sent again


def test_a_sellers_custom_status_is_never_overwritten(env: Env):
    a, b = env.satu_orders(2)
    env.add(a)
    env.add(b)
    env.run()  # baseline
    env.sandbox.modify_order(a, status="custom-1002")  # the seller filed it in the "Декабрь" folder
    env.update(a, STATUS=3)
    env.update(b, STATUS=3)
    for verify, next_status in ((True, 1), (False, 3)):  # with or without the read-before-write check
        env.configure(verify_before_push=verify)
        result = env.run()
        assert (result.kept_custom, result.failed) == (1, 0)
        env.update(a, STATUS=next_status)
    assert env.satu_status(a) == "custom-1002" and env.satu_status(b) == "delivered"
    kept = [e for e in env.events(order_id=a) if e.data and e.data.get("custom_status") == "custom-1002"]
    assert len(kept) == 2 and "Декабрь" in kept[0].message
    # switched off: the shop's status (delivered, set after the last run) goes out like any other
    env.configure(keep_custom_statuses=False)
    assert env.run().pushed == 1 and env.satu_status(a) == "delivered"
