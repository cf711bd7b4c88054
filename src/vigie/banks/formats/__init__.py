"""banks/formats."""
