-- Finance exports (issue 15): journal lines by time, streamed oldest first.
CREATE INDEX wallet_ledger_at ON wallet_ledger (at, position, wallet_id);
