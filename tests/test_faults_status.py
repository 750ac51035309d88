"""Issue 12 (status push): a lost state never re-baselines silently — failed before the fix."""

from __future__ import annotations

from pipeline.state import State
from test_status_push import SET_STATUS, Env, env, sandbox  # noqa: F401 - fixtures


def test_a_lost_state_does_not_silently_rebaseline_and_drop_pending_changes(env: Env):  # noqa: F811
    a, b = env.satu_orders(2)
    env.add(a)
    env.add(b)
    assert env.run().baseline == 2
    env.update(a, STATUS=3)  # a change made while the state is then lost
    env.state.close()
    path = env.settings.journal.state_path
    path.unlink()
    env.state = State.from_settings(env.settings)
    result = env.run()
    assert result.baseline == 0 and not result.ok, result
    assert any("state" in e.message and str(path) in e.message for e in env.events(level="error"))
    # the operator decides: an explicit baseline is taken on request
    assert env.run(baseline=True).baseline == 2
    assert env.calls(SET_STATUS) == 0
