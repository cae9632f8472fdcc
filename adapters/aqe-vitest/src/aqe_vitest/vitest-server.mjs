// aqe's long-lived Vitest process: one per aqe worker, started once, running every
// batch of files it is dealt through Vitest's Node API (createVitest, then
// runTestSpecifications per batch), so a worker pays Node.js, Vite and the config's
// start-up once and keeps Vite's transform cache warm between batches.
//
//   node vitest-server.mjs VITEST_NODE_ENTRY OPTIONS_JSON [VITEST CLI ARGS...]
//
// Requests come as JSON lines on stdin, answers go as JSON lines to the file descriptor
// $AQE_SERVER_FD (a pipe to aqe; stdout and stderr stay Vitest's and the tests'):
//   {"op": "files", "filters": [...]}     -> {"files": [absolute paths]}
//   {"op": "run", "files": [absolute], "pattern": "regexp" | null, "report": PATH}
//                                         -> {"done": true} once PATH holds the report
// The report has the shape of Vitest's JSON reporter (testResults, assertionResults),
// plus "console": each console line a test printed, keyed by its file and name path,
// and each module's "overhead": its seconds outside its tests.
// A first line {"ready": true} (or {"error": "..."}: the config was rejected) comes
// before any request is read.
import { writeSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'

const [entry, optionsJson, ...cliArgs] = process.argv.slice(2)
const ours = JSON.parse(optionsJson)
const ANSWERS = Number(process.env.AQE_SERVER_FD ?? 3)

function answer(message) {
  writeSync(ANSWERS, JSON.stringify(message) + '\n')
}

const STATUS = { fail: 'failed', only: 'pending', pass: 'passed', run: 'pending', skip: 'skipped', todo: 'todo', queued: 'pending' }

class Collector {
  constructor() {
    this.console = []
  }

  onInit(vitest) {
    this.vitest = vitest
  }

  onUserConsoleLog(log) {
    const task = log.taskId ? this.vitest.state.idMap.get(log.taskId) : undefined
    const path = []
    for (let node = task; node && node.file && node !== node.file; node = node.suite) {
      path.unshift(node.name)
    }
    this.console.push({ file: task?.file?.filepath ?? null, path, type: log.type, content: log.content })
  }
}

function tests(task, out = []) {
  for (const child of task.tasks ?? []) {
    if (child.type === 'suite') tests(child, out)
    else out.push(child)
  }
  return out
}

function assertion(test) {
  const ancestorTitles = []
  for (let suite = test.suite; suite && suite !== test.file; suite = suite.suite) {
    ancestorTitles.unshift(suite.name)
  }
  return {
    ancestorTitles,
    title: test.name,
    status: STATUS[test.result?.state || test.mode] || 'skipped',
    duration: test.result?.duration,
    failureMessages: test.result?.errors?.map((e) => e.stack || e.message) || [],
    location: test.location,
  }
}

// Seconds a module costs besides its tests (its environment, Vitest's harness, its
// imports and setup files): what balancing files by their tests' seconds misses.
function overhead(module) {
  const d = module.diagnostic()
  return (d.environmentSetupDuration + d.prepareDuration + d.collectDuration + d.setupDuration) / 1000
}

function report(modules, collector) {
  return {
    testResults: modules.map((module) => ({
      name: module.task.filepath,
      message: module.task.result?.errors?.[0]?.message ?? '',
      overhead: overhead(module),
      assertionResults: tests(module.task).map(assertion),
    })),
    console: collector.console,
  }
}

async function main() {
  // As `vitest run` sets them before it loads the config (startVitest's prepareVitest).
  process.env.TEST = 'true'
  process.env.VITEST = 'true'
  process.env.NODE_ENV ??= 'test'
  const { createVitest, parseCLI } = await import(pathToFileURL(entry).href)
  const parsed = cliArgs.length ? parseCLI(['vitest', 'run', ...cliArgs]).options : {}
  const collector = new Collector()
  const options = {
    ...parsed,
    watch: false,
    run: true,
    reporters: [collector],
    includeTaskLocation: true,
    passWithNoTests: true,
  }
  if (options.maxWorkers === undefined && options.fileParallelism === undefined) {
    options.maxWorkers = 1 // aqe's workers are the parallelism
  }
  if (ours.testTimeout) options.testTimeout = ours.testTimeout
  let vitest
  try {
    vitest = await createVitest('test', options)
  } catch (error) {
    answer({ error: String(error?.message ?? error).split('\n')[0] })
    process.exit(1)
  }
  collector.onInit(vitest) // Vitest calls it only from start() or standalone()
  const userPattern = vitest.getGlobalTestNamePattern()
  const known = new Map()
  const specifications = async (filters) => {
    const found = await vitest.globTestSpecifications(filters)
    for (const spec of found) {
      const list = known.get(spec.moduleId) ?? []
      if (!list.some((s) => s.project === spec.project)) list.push(spec)
      known.set(spec.moduleId, list)
    }
    return found
  }
  await specifications([])
  answer({ ready: true })

  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue
    const request = JSON.parse(line)
    if (request.op === 'files') {
      const found = await specifications(request.filters)
      answer({ files: [...new Set(found.map((spec) => spec.moduleId))] })
      continue
    }
    // Exact files: each a specification of its own path, never a substring filter.
    const specs = request.files.flatMap(
      (file) => known.get(file) ?? [vitest.getRootProject().createSpecification(file)],
    )
    if (request.pattern) vitest.setGlobalTestNamePattern(request.pattern)
    else if (userPattern) vitest.setGlobalTestNamePattern(userPattern)
    else vitest.resetGlobalTestNamePattern()
    collector.console = []
    let modules = []
    let failure = null
    try {
      const result = await vitest.runTestSpecifications(specs, false)
      // Its modules are every module Vitest's state holds: keep this batch's.
      const asked = new Set(specs.map((spec) => spec.moduleId))
      modules = result.testModules.filter((module) => asked.has(module.moduleId))
    } catch (error) {
      failure = String(error?.stack ?? error)
    }
    writeFileSync(request.report, JSON.stringify({ ...report(modules, collector), failure }))
    answer({ done: true })
  }
  await vitest.close()
  process.exit(0)
}

main().catch((error) => {
  try {
    answer({ error: String(error?.message ?? error).split('\n')[0] })
  } catch {}
  process.exit(1)
})
