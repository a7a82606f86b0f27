"""The core rules outside advice: the ledger, note text, merging, clinic wording."""
