"""CLI commands, one module per concern; each module exports COMMANDS (a list of click commands)."""
