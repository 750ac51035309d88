"""Developer tools: not on the runtime path (the Satu sandbox, the demo)."""
