// aqe's long-lived Jest process: one per aqe worker, started once, running every
// batch of files it is dealt through Jest's runCLI (the project's own jest), in band,
// so a worker pays Node.js's and Jest's start-up once. The protocol is
// vitest-server.mjs's: JSON lines on stdin, JSON lines on $AQE_SERVER_FD.
//
//   node jest-server.cjs PROJECT_ROOT OPTIONS_JSON [JEST CLI ARGS...]
//
//   {"op": "run", "files": [absolute], "pattern": "regexp" | null, "report": PATH}
//     -> {"done": true} once PATH holds the report, in the shape of `jest --json`.
'use strict'
const { writeSync, writeFileSync } = require('node:fs')
const path = require('node:path')
const { createInterface } = require('node:readline')

const [root, optionsJson, ...cliArgs] = process.argv.slice(2)
const ours = JSON.parse(optionsJson)
const ANSWERS = Number(process.env.AQE_SERVER_FD ?? 3)

function answer(message) {
  writeSync(ANSWERS, JSON.stringify(message) + '\n')
}

function fromProject(name) {
  return require(require.resolve(name, { paths: [root] }))
}

// Where Node.js's own console writes each of Jest's console entry types.
const STDERR = new Set(['error', 'warn', 'trace', 'assert'])

// The line of the outermost frame in `file` of a console entry's stack (its origin):
// the test's own callback, even when a helper in the same file did the printing.
function callerLine(origin, file) {
  let found = null
  for (const frame of String(origin ?? '').split('\n')) {
    const at = frame.lastIndexOf(file + ':')
    if (at < 0) continue
    const line = /^:(\d+)/.exec(frame.slice(at + file.length))
    if (line) found = Number(line[1])
  }
  return found
}

// Jest buffers a file's console lines with their stacks, not by test: each goes to the
// test whose body holds the printing frame (the last test starting at or before it), in
// the shape of vitest-server.mjs's console entries. Lines printed outside any test (a
// describe body, a hook before the first test) are left to the file's output.
function consoleOf(file) {
  const tests = file.testResults
    .filter((test) => test.location?.line != null)
    .sort((a, b) => a.location.line - b.location.line)
  const entries = []
  for (const entry of globalThis.__aqeJestConsole?.get(file.testFilePath) ?? []) {
    const line = callerLine(entry.origin, file.testFilePath)
    let owner = null
    for (const test of tests) if (line != null && test.location.line <= line) owner = test
    if (owner == null) continue
    entries.push({
      file: file.testFilePath,
      path: [...owner.ancestorTitles, owner.title],
      type: STDERR.has(entry.type) ? 'stderr' : 'stdout',
      content: String(entry.message) + '\n',
    })
  }
  return entries
}

function formatted(results) {
  return {
    console: results.testResults.flatMap(consoleOf),
    testResults: results.testResults.map((file) => ({
      name: file.testFilePath,
      message: file.failureMessage ?? file.testExecError?.message ?? '',
      // Its seconds outside its tests (environment, setup files, imports).
      overhead: Math.max(
        0,
        (file.perfStats.runtime - file.testResults.reduce((sum, t) => sum + (t.duration ?? 0), 0)) / 1000,
      ),
      assertionResults: file.testResults,
    })),
  }
}

async function main() {
  // As jest's own command sets it (a Babel config may read it: `env.test`).
  if (process.env.NODE_ENV == null) process.env.NODE_ENV = 'test'
  let jest, base
  try {
    jest = fromProject('jest')
    const { buildArgv } = require(require.resolve('jest-cli', { paths: [path.dirname(require.resolve('jest/package.json', { paths: [root] }))] }))
    base = await buildArgv(cliArgs)
  } catch (error) {
    answer({ error: String(error?.message ?? error).split('\n')[0] })
    process.exit(1)
  }
  const inBand = !(base.maxWorkers || base.w || base.runInBand === false)
  answer({ ready: true })
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue
    const request = JSON.parse(line)
    const argv = {
      ...base,
      _: request.files,
      ci: true,
      watch: false,
      watchAll: false,
      runTestsByPath: true,
      testLocationInResults: true,
      passWithNoTests: true,
      reporters: [path.join(__dirname, 'jest-console-reporter.cjs')],
      // Buffered console lines, with their stacks (a batch of one file would otherwise
      // be "verbose": its console written straight to stdout, unattributed).
      verbose: false,
    }
    if (inBand) argv.runInBand = true
    if (request.pattern) argv.testNamePattern = request.pattern
    if (ours.testTimeout) argv.testTimeout = ours.testTimeout
    let report
    globalThis.__aqeJestConsole = new Map()
    try {
      const { results } = await jest.runCLI(argv, [root])
      report = formatted(results)
    } catch (error) {
      report = { testResults: [], failure: String(error?.stack ?? error) }
    }
    writeFileSync(request.report, JSON.stringify(report))
    answer({ done: true })
  }
  process.exit(0)
}

main().catch((error) => {
  try {
    answer({ error: String(error?.message ?? error).split('\n')[0] })
  } catch {}
  process.exit(1)
})
