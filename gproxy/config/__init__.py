"""Configuration: the TOML schema, its loader and the parsed value objects."""

from gproxy.config.model import Config  # noqa: F401
