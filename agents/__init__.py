"""The Faust shell around the core: settings, app, topics, state table, agents, metrics, CLI."""
