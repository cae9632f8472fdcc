"""What aqe learns from its history: flaky and broken tests, and the quarantine.

Reads the history store only; the engine never imports this package.
"""
