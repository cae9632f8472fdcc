// aqe's console channel for Jest: Jest hands a file's buffered console lines (each
// with its stack) only to reporters, and drops them afterwards; this reporter keeps
// them, by test file, for jest-server.cjs, which runs Jest in the same process.
'use strict'

class AqeConsoleReporter {
  onTestFileResult(_test, testResult) {
    const kept = (globalThis.__aqeJestConsole ??= new Map())
    if (testResult.console) kept.set(testResult.testFilePath, testResult.console)
  }
}

module.exports = AqeConsoleReporter
