"""The execution engine: coordinator, workers and the plan between them.

Data flow: the coordinator (a pytest session with aqe's plugin) collects shallowly
and forks workers (or spawns them where forking is unsafe). Workers collect their share of files,
run tests through pytest's runtest protocol and send ``TestFinished`` messages;
the coordinator replays the reports through pytest's hooks and records results.
"""
