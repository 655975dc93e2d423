"""The runtime: assembles config, storage, handlers and adapters; the CLI on top."""
