"""The outermost layer: settings, the composition root, the CLI and the chat platform adapters."""
