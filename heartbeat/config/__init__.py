"""heartbeat's configuration: schema (every key declared once), loader, docs.

`load_file`, `load_string` and `load_dict` (heartbeat.config.loader) turn TOML
into a validated `heartbeat.model.ClusterConfig` or raise
`heartbeat.errors.ConfigError` listing every problem with its key path.
"""
