// onComplete is delivered at least once: failures are retried with backoff, a run
// lost with its process is run again after a restart, and the delivery state is
// on the row for the app to see.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { TusError, type CompleteHookPayload } from '../lib/index.js'
import { startServer, tempDir, testDatabase } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { TUS, create, patch, send } from './helpers/http.js'
import { idOf, waitFor } from './helpers/tus.js'

t.test('a throwing handler is retried until it succeeds, with a stable idempotency key', async (t) => {
  const calls: Array<Pick<CompleteHookPayload, 'idempotencyKey' | 'attempt'>> = []
  const { endpoint, app } = await startServer(t, {
    completeHookRetryInterval: 50,
    onComplete: async ({ idempotencyKey, attempt }) => {
      calls.push({ idempotencyKey, attempt })
      if (attempt < 3) throw new Error(`flaky downstream ${attempt}`)
    }
  })
  const url = await create(endpoint, { 'Upload-Length': '3' })
  const res = await patch(url, 0, Buffer.from('abc'))
  t.equal(res.status, 204, 'the upload is stored; the failing hook does not fail the request')
  let record = await app.tus.get(idOf(url))
  t.equal(record?.completeHook?.state, 'pending')
  t.equal(record?.completeHook?.attempts, 1)
  t.equal(record?.completeHook?.lastError, 'flaky downstream 1')
  t.ok(record!.completeHook!.nextAttemptAt! > new Date(), 'a retry is scheduled')

  await waitFor(async () => (await app.tus.get(idOf(url)))?.completeHook?.state === 'delivered', 8000, 'delivery')
  record = await app.tus.get(idOf(url))
  t.equal(record?.completeHook?.attempts, 3)
  t.equal(record?.completeHook?.lastError, null)
  t.ok(record?.completeHook?.deliveredAt instanceof Date)
  t.same(calls.map((c) => c.attempt), [1, 2, 3])
  t.same(new Set(calls.map((c) => c.idempotencyKey)).size, 1, 'one key for every attempt')
  t.equal(calls[0]!.idempotencyKey, `${idOf(url)}:complete`)
})

t.test('a TusError with a 4xx status is a rejection: answered to the client, not retried', async (t) => {
  let runs = 0
  const { endpoint, app } = await startServer(t, {
    completeHookRetryInterval: 20,
    onComplete: () => { runs++; throw new TusError(422, 'virus found') }
  })
  const url = await create(endpoint, { 'Upload-Length': '1' })
  const res = await patch(url, 0, Buffer.from('x'))
  t.equal(res.status, 422)
  t.equal(res.text, 'virus found')
  await new Promise((resolve) => setTimeout(resolve, 200))
  const record = await app.tus.get(idOf(url))
  t.equal(record?.completeHook?.state, 'rejected')
  t.equal(record?.completeHook?.lastError, 'virus found')
  t.equal(runs, 1)
})

t.test('after the last attempt the delivery is marked failed', async (t) => {
  const { endpoint, app } = await startServer(t, {
    completeHookAttempts: 1,
    onComplete: () => { throw new Error('downstream is gone') }
  })
  const url = await create(endpoint, { 'Upload-Length': '1' })
  t.equal((await patch(url, 0, Buffer.from('x'))).status, 204)
  const record = await app.tus.get(idOf(url))
  t.equal(record?.completeHook?.state, 'failed')
  t.equal(record?.completeHook?.attempts, 1)
  t.equal(record?.completeHook?.nextAttemptAt, null)
  t.equal(await app.tus.runDueCompleteHooks(), 0, 'nothing is due any more')
})

t.test('a slow onComplete blocks neither other uploads nor, in background mode, its own reply', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let finished = 0
  const { endpoint, app } = await startServer(t, {
    completeDelivery: 'background',
    onComplete: async ({ upload }) => {
      if (upload.metadata.slow !== undefined) await gate
      finished++
    }
  })
  const slow = await create(endpoint, { 'Upload-Length': '1', 'Upload-Metadata': 'slow' })
  const res = await patch(slow, 0, Buffer.from('s'))
  t.equal(res.status, 204, 'answered while its onComplete is still running')
  // The claim is written just after the reply in background mode (on PostgreSQL it can trail it).
  await waitFor(async () => (await app.tus.get(idOf(slow)))?.completeHook?.state === 'running', 2000, 'the claim')
  t.equal(finished, 0, 'the slow hook has not finished: it is still waiting at its gate')
  for (let i = 0; i < 5; i++) {
    const other = await create(endpoint, { 'Upload-Length': '2' })
    t.equal((await patch(other, 0, Buffer.from('ok'))).status, 204, `upload ${i} completes meanwhile`)
  }
  await waitFor(() => finished === 5, 2000, 'the other hooks')
  release()
  await waitFor(async () => (await app.tus.get(idOf(slow)))?.completeHook?.state === 'delivered', 2000, 'slow hook')
})

t.test('a hook run lost with its process is run again after a restart', async (t) => {
  const dir = tempDir(t)
  const database = testDatabase(t, dir, 'db.sqlite')
  const env = {
    UPLOAD_DIR: join(dir, 'uploads'), DB_PATH: database.db, DB_SCHEMA: database.schema ?? '', RUNS_FILE: join(dir, 'runs.jsonl'), LEASE: '300'
  }
  const first = await spawnServer(t, ['test/fixtures/hook-server.js'], { ...env, HOOK_DIE: '1' })
  const created = await send('POST', `${first.origin}/files/`, { headers: { ...TUS, 'Upload-Length': '4' } })
  const url = created.headers.location as string
  // The hook kills the server during the last PATCH: no reply comes back.
  await patch(url, 0, Buffer.from('data')).catch(() => undefined)
  await new Promise<void>((resolve) => first.child.exitCode !== null ? resolve() : first.child.once('exit', () => resolve()))
  t.equal(first.child.signalCode, 'SIGKILL', 'the first process died inside onComplete')

  await spawnServer(t, ['test/fixtures/hook-server.js'], env)
  await waitFor(() => existsSync(env.RUNS_FILE) && readFileSync(env.RUNS_FILE, 'utf8').trim().split('\n').length >= 2, 5000, 'a second run')
  const runs = readFileSync(env.RUNS_FILE, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { pid: number; idempotencyKey: string; attempt: number })
  t.equal(runs.length, 2, 'run once more, not more')
  t.not(runs[0]!.pid, runs[1]!.pid, 'by the restarted process')
  t.equal(runs[1]!.idempotencyKey, runs[0]!.idempotencyKey)
  t.same(runs.map((r) => r.attempt), [1, 2])
})

t.test('a handler that kills its process every time is given up after completeHookAttempts', async (t) => {
  const dir = tempDir(t)
  const database = testDatabase(t, dir, 'db.sqlite')
  const env = {
    UPLOAD_DIR: join(dir, 'uploads'), DB_PATH: database.db, DB_SCHEMA: database.schema ?? '', RUNS_FILE: join(dir, 'runs.jsonl'), LEASE: '300', ATTEMPTS: '2'
  }
  const died = async (server: { child: import('node:child_process').ChildProcess }): Promise<void> =>
    new Promise<void>((resolve) => server.child.exitCode !== null || server.child.signalCode !== null ? resolve() : server.child.once('exit', () => resolve()))
  const first = await spawnServer(t, ['test/fixtures/hook-server.js'], { ...env, HOOK_DIE: '1' })
  const created = await send('POST', `${first.origin}/files/`, { headers: { ...TUS, 'Upload-Length': '4' } })
  const url = created.headers.location as string
  const id = url.split('/').pop()!
  await patch(url, 0, Buffer.from('data')).catch(() => undefined)
  await died(first)
  // The second process takes the delivery up (attempt 2) as it starts and dies in it too,
  // maybe before it ever listens: wait for its exit, not for its address.
  const second = spawn(process.execPath, ['test/fixtures/hook-server.js'], { env: { ...process.env, ...env, HOOK_DIE: '1' }, stdio: 'ignore' })
  t.teardown(() => { if (second.exitCode === null && second.signalCode === null) second.kill('SIGKILL') })
  const timer = setTimeout(() => second.kill('SIGKILL'), 15_000)
  await died({ child: second })
  clearTimeout(timer)
  t.equal(second.signalCode, 'SIGKILL', 'attempt 2 killed its process as well')

  // The third claims it once more, sees the limit passed and marks it failed without running it.
  const third = await spawnServer(t, ['test/fixtures/hook-server.js'], env)
  let state: { completeHook?: { state: string; attempts: number; lastError: string | null } } | null = null
  await waitFor(async () => {
    state = JSON.parse((await send('GET', `${third.origin}/state/${id}`)).text) as typeof state
    return state?.completeHook?.state === 'failed'
  }, 5000, 'the delivery marked failed')
  const runs = readFileSync(env.RUNS_FILE, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { attempt: number })
  t.same(runs.map((r) => r.attempt), [1, 2], 'the handler ran twice, never a third time')
  t.match(state!.completeHook!.lastError, /gave up after 2 attempts/)
})
