"""Issue 12 (Satu pushes): lost state, sell-outs before the first push, 200-with-error — each failed before."""

from __future__ import annotations

from pipeline.contracts import feed_offers
from pipeline.satu.push import ACKED_NS
from test_satu_push import _catalog, _matches, _push, _seed, env, sandbox  # noqa: F401 - fixtures


def test_a_transient_200_with_error_reply_is_retried_in_the_same_run(env, sandbox):  # noqa: F811
    settings, journal, state, client = env
    catalog = _catalog(120)
    _seed(sandbox, state, catalog)
    sandbox.fail_next(1, "200-error", path="/products/edit_by_external_id")
    r = _push(env)
    assert r.ok and r.accepted == 120 and r.rejected == 0, r
    assert len(dict(state.items(ACKED_NS))) == 120
    assert _matches(sandbox, catalog)


def test_products_that_sell_out_before_the_first_push_do_not_stay_available(env, sandbox):  # noqa: F811
    settings, journal, state, client = env
    catalog = _catalog(40)
    _seed(sandbox, state, catalog)  # Satu imported the published feed: it holds all 40
    # … then they left the feed (the feed stage's commit) before any push was acknowledged
    feed_offers.remove(state, ["12", "13", "14"])
    for _ in range(2):
        _push(env)
    for key in ("12", "13", "14"):
        product = sandbox.product(key)
        assert (product["presence"], product["quantity_in_stock"]) == ("not_available", 0), product
    assert list(feed_offers.left_items(state)) == []  # acknowledged as gone: nothing left to do
    assert dict(state.items(ACKED_NS))["12"]["gone"] is True
