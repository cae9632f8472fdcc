"""``aqe mcp``: a stdio MCP server that lets AI coding agents drive the fleet.

Needs the optional ``mcp`` extra (``pip install -e '/path/to/aqe[mcp]'`` from a
checkout); the core install does not pull in the MCP SDK and its web stack.
"""
