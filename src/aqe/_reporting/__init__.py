"""Report writers: turn a finished (or aborted) :class:`~aqe._model.RunRecord` into output.

Each writer lives in its own module and reads only :mod:`aqe._model`, so importing this
package stays cheap; import the writer you need directly.
"""
