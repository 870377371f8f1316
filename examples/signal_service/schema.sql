-- The signal tracker's table and its indexes (SQLite). Every statement is idempotent.
-- Timestamps are fixed-width ISO 8601 UTC text ("2026-01-06T15:00:00.000000Z"),
-- so text order is time order and range queries use the indexes.

CREATE TABLE IF NOT EXISTS signals (
    id              INTEGER PRIMARY KEY,
    signal_id       TEXT    NOT NULL UNIQUE,
    symbol          TEXT    NOT NULL,
    action          TEXT    NOT NULL CHECK (action IN ('BUY', 'SELL', 'HOLD')),
    entry_price     REAL    NOT NULL,
    target_price    REAL    NOT NULL,
    stop_price      REAL    NOT NULL,
    confidence      REAL    NOT NULL,
    strategy        TEXT    NOT NULL,
    asset_type      TEXT    NOT NULL CHECK (asset_type IN ('stock', 'crypto')),
    data_source     TEXT    NOT NULL,
    timestamp       TEXT    NOT NULL,
    outcome         TEXT    CHECK (outcome IN ('win', 'loss', 'expired')),
    exit_price      REAL,
    profit_loss_pct REAL,
    sha256          TEXT    NOT NULL,
    order_id        TEXT,
    created_at      TEXT    NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_confidence ON signals (confidence);
CREATE INDEX IF NOT EXISTS idx_created_at ON signals (created_at);
CREATE INDEX IF NOT EXISTS idx_symbol_timestamp ON signals (symbol, timestamp);
CREATE INDEX IF NOT EXISTS idx_symbol_outcome ON signals (symbol, outcome);
CREATE INDEX IF NOT EXISTS idx_timestamp_outcome ON signals (timestamp, outcome);
