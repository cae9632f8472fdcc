"""``aqe mcp``: a stdio MCP server that lets AI coding agents drive the fleet.

Needs the optional ``mcp`` extra (``pip install 'aqe[mcp]'``); the core install
does not pull in the MCP SDK and its web stack.
"""
