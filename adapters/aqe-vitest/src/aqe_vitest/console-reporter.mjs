// aqe's console channel for Vitest: every console line a test prints, as one JSON
// line in $AQE_VITEST_CONSOLE, keyed by the test's file and name path. Vitest's JSON
// reporter leaves console output out; this reporter runs beside it.
import { appendFileSync } from 'node:fs'

export default class AqeConsoleReporter {
  onInit(vitest) {
    this.vitest = vitest
  }

  onUserConsoleLog(log) {
    const target = process.env.AQE_VITEST_CONSOLE
    if (!target) return
    const task = log.taskId ? this.vitest.state.idMap.get(log.taskId) : undefined
    const path = []
    for (let node = task; node && node.file && node !== node.file; node = node.suite) {
      path.unshift(node.name)
    }
    const line = { file: task?.file?.filepath ?? null, path, type: log.type, content: log.content }
    appendFileSync(target, JSON.stringify(line) + '\n')
  }
}
