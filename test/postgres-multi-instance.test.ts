/**
 * Scale-out: three server processes on three ports share one PostgreSQL
 * database (a fresh schema they migrate at the same moment) and one upload
 * directory. 50 uploads run in parallel with every request sent round-robin to
 * the instances, so each PATCH of an upload may reach a different process.
 * Midway, one instance is killed with SIGKILL (preferably while an onComplete
 * of its own is running). Every upload must finish byte-exact on the
 * survivors, and every onComplete must have run: once, or twice only when the
 * first run was the killed instance's claim.
 */
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TusPluginOptions } from '../lib/index.js'
import { tempDir } from './helpers/server.js'
import { spawnServer, type Spawned } from './helpers/spawn.js'
import { TUS, bytes, patch, send, sha256 } from './helpers/http.js'
import { sleep, stored, waitFor } from './helpers/tus.js'
import { postgresOrSkip, query, testSchema } from './helpers/postgres.js'

const url = postgresOrSkip(t)

const INSTANCES = 3
const UPLOADS = 50
const CHUNK = 16 * 1024
const LOCK_LEASE = 2000
const HOOK_LEASE = 1500
const HOOK_DELAY = 300

interface Run { event: 'start' | 'end'; pid: number; id: string; attempt: number }

if (url !== undefined) {
  t.test(`${INSTANCES} processes, ${UPLOADS} uploads round-robin, one instance killed mid-run`, async (t) => {
    const schema = testSchema(t) // dropped last, after the processes are gone
    const dir = tempDir(t)
    const uploadDir = join(dir, 'uploads')
    const runsFile = join(dir, 'runs.jsonl')
    const options: TusPluginOptions = {
      uploadDir,
      db: url,
      schema,
      poolSize: 5,
      lockLease: LOCK_LEASE,
      completeHookLease: HOOK_LEASE,
      completeHookRetryInterval: 200
    }
    const env = { TUS_OPTIONS: JSON.stringify(options), RUNS_FILE: runsFile, HOOK_DELAY: String(HOOK_DELAY) }
    const servers: Spawned[] = await Promise.all(Array.from({ length: INSTANCES }, async () => spawnServer(t, ['test/fixtures/server.js'], env)))
    t.pass(`${INSTANCES} processes started at once on a new schema (migrations raced)`)
    const origins = servers.map((s) => s.origin)
    const doomed = servers[INSTANCES - 1]!
    const doomedPid = doomed.child.pid!

    // Upload sizes vary, so completions (and their hooks) are spread over the run.
    const sources = Array.from({ length: UPLOADS }, (_, i) => bytes(CHUNK * (3 + (i * 7) % 13) + (i % 3) * 1000, 500 + i))
    const totalChunks = sources.reduce((n, s) => n + Math.ceil(s.length / CHUNK), 0)
    const stats = { applied: 0, conflicts: 0, locked: 0, networkErrors: 0 }
    let turn = 0
    const nextOrigin = (): string => origins[turn++ % origins.length]!
    const deadline = Date.now() + 90_000

    /** HEAD at the next instance that answers: the committed offset. */
    const offsetOf = async (path: string): Promise<number> => {
      for (;;) {
        if (Date.now() > deadline) throw new Error('gave up reading the offset')
        try {
          const res = await send('HEAD', nextOrigin() + path, { headers: TUS })
          if (res.status === 200) return Number(res.headers['upload-offset'])
          throw new Error(`HEAD answered ${res.status}`)
        } catch (err) {
          if (!/ECONNREFUSED|ECONNRESET|socket hang up/.test(String(err))) throw err
          stats.networkErrors++
        }
      }
    }

    const upload = async (source: Buffer): Promise<string> => {
      let path: string | undefined
      while (path === undefined) {
        try {
          const res = await send('POST', nextOrigin() + '/files/', { headers: { ...TUS, 'Upload-Length': String(source.length) } })
          if (res.status !== 201) throw new Error(`create answered ${res.status} ${res.text}`)
          path = new URL(res.headers.location as string).pathname
        } catch (err) {
          if (!/ECONNREFUSED|ECONNRESET|socket hang up/.test(String(err))) throw err
          stats.networkErrors++
        }
      }
      let offset = 0
      while (offset < source.length) {
        if (Date.now() > deadline) throw new Error(`upload ${path} stuck at ${offset}`)
        let res
        try {
          res = await patch(nextOrigin() + path, offset, source.subarray(offset, Math.min(offset + CHUNK, source.length)))
        } catch (err) {
          if (!/ECONNREFUSED|ECONNRESET|socket hang up/.test(String(err))) throw err
          stats.networkErrors++
          offset = await offsetOf(path)
          continue
        }
        if (res.status === 204) {
          stats.applied++
          offset = Number(res.headers['upload-offset'])
        } else if (res.status === 409) {
          stats.conflicts++
          offset = Number(res.headers['upload-offset'])
        } else if (res.status === 423) {
          // Held by a request still running, or by the dead instance until its lease lapses.
          stats.locked++
          await sleep(100)
        } else {
          throw new Error(`PATCH ${path} at ${offset} answered ${res.status} ${res.text}`)
        }
      }
      return path.split('/').pop()!
    }

    const runs = (): Run[] => existsSync(runsFile) ? readFileSync(runsFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Run) : []

    // The killer: after a third of the chunks, at the first moment the doomed
    // instance is inside an onComplete of its own (or at half the chunks anyway).
    let killedInsideHook = false
    let appliedAtKill = 0
    const killer = (async () => {
      while (stats.applied < totalChunks / 3) await sleep(5)
      while (stats.applied < totalChunks / 2) {
        const mine = runs().filter((r) => r.pid === doomedPid)
        const open = mine.filter((r) => r.event === 'start' && !mine.some((e) => e.event === 'end' && e.id === r.id))
        if (open.length > 0) { killedInsideHook = true; break }
        await sleep(2)
      }
      appliedAtKill = stats.applied
      doomed.child.kill('SIGKILL')
      await new Promise<void>((resolve) => doomed.child.exitCode !== null || doomed.child.signalCode !== null ? resolve() : doomed.child.once('exit', () => resolve()))
    })()

    const ids = await Promise.all(sources.map(upload))
    await killer
    t.equal(doomed.child.signalCode, 'SIGKILL', `an instance was killed mid-run (after ${appliedAtKill} of ~${totalChunks} chunks; inside one of its hooks: ${killedInsideHook})`)
    t.ok(appliedAtKill < totalChunks * 0.9, 'killed while uploads were still running')
    t.comment(`PATCHes applied ${stats.applied}, 409 ${stats.conflicts}, 423 ${stats.locked}, network errors ${stats.networkErrors}`)
    t.ok(stats.networkErrors > 0, 'the killed instance was in use when it died')

    // Bytes: every upload complete and byte-exact, as seen on disk and through a survivor.
    let exact = 0
    for (const [i, id] of ids.entries()) if (stored(uploadDir, id)?.equals(sources[i]!) === true) exact++
    t.equal(exact, UPLOADS, `all ${UPLOADS} uploads stored byte-exact`)
    for (const [i, id] of ids.entries()) {
      const res = await send('GET', `${origins[i % (INSTANCES - 1)]}/files/${id}`)
      if (res.status !== 200 || sha256(res.body) !== sha256(sources[i]!)) t.fail(`download of ${id} from a survivor: ${res.status}`)
    }

    // Hooks: every delivery settles on the survivors.
    await waitFor(async () => {
      const rows = await query<{ n: string }>("SELECT count(*) AS n FROM tus_uploads WHERE complete_hook_state = 'delivered'", [], schema)
      return Number(rows[0]!.n) === UPLOADS
    }, 20_000, 'every onComplete to be delivered')
    t.pass('every upload\'s onComplete is recorded delivered')
    const all = runs()
    const problems: string[] = []
    let rerun = 0
    for (const id of ids) {
      const starts = all.filter((r) => r.id === id && r.event === 'start')
      const byDoomed = starts.filter((r) => r.pid === doomedPid)
      const bySurvivors = starts.filter((r) => r.pid !== doomedPid)
      const ended = all.some((r) => r.id === id && r.event === 'end')
      if (!ended) problems.push(`${id}: no run finished`)
      if (bySurvivors.length > 1) problems.push(`${id}: run ${bySurvivors.length} times by the survivors`)
      if (byDoomed.length > 1) problems.push(`${id}: run ${byDoomed.length} times by the killed instance`)
      if (byDoomed.length === 1 && bySurvivors.length === 1) {
        rerun++
        if (bySurvivors[0]!.attempt !== 2) problems.push(`${id}: the re-run is attempt ${bySurvivors[0]!.attempt}, not 2`)
      }
      if (starts.length === 0) problems.push(`${id}: onComplete never ran`)
    }
    t.same(problems, [], 'every onComplete ran, none twice except after the killed instance\'s claim')
    t.comment(`onComplete runs: ${all.filter((r) => r.event === 'start').length} for ${UPLOADS} uploads; re-run after the kill: ${rerun}`)
    if (killedInsideHook) t.ok(rerun >= 1, 'the run lost with the killed instance was taken up by a survivor')
    t.same(await query("SELECT id FROM tus_uploads WHERE completed_at IS NULL OR complete_hook_state <> 'delivered'", [], schema), [], 'no row left unfinished or undelivered')
  })
}
