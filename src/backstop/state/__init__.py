"""The only mutators: ledger, order books, positions, insurance funds; and their invariants."""
