"""The version, in one place below every layer (the CLI, MCP and ``aqe.__version__``)."""

__version__ = "0.1.0"
