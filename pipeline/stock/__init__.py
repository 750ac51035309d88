"""The stock watcher: stock and price changes reach Satu within a minute of a sale (issue 17).

- `levels`: the pure rules shared with the feed (available whole units, the zero-stock presence) and
  the per-good stock level the watcher compares;
- `detect`: reading what changed — through the optional `stock_changes.sql` (a CHANGED_AT cursor) or,
  without it, a stock-only read of all goods compared with the last one by a per-good hash;
- `watch`: one watcher tick (detect → update the feed record → push through `pipeline.satu.push`).
"""
