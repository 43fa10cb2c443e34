// Retries against a real server whose onRequest hook fails the first PATCHes:
// 409 (offset re-read with HEAD), 423, 5xx and 460 are retried, 501 and other
// 4xx are not; maxRetries, onShouldRetry, the timeout, abort and the backoff.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import {
  MAX_RETRY_DELAY, TusAbortError, TusClient, TusHttpError, TusTimeoutError, isRetryableError, retryDelay, type TusProgress
} from '../lib/client/index.js'
import { startServer } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { sleep } from './helpers/tus.js'
import { logRequests, storedAt } from './helpers/client-env.js'

const CHUNK = 16 * 1024
const content = bytes(4 * CHUNK + 10, 11)

/** Answers `status` to the first `times` PATCH requests, before the plugin sees them. */
function failPatches (app: FastifyInstance, status: number, times: number): { failed: () => number } {
  let failed = 0
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'PATCH' || failed >= times) return
    failed++
    await reply.code(status).header('Tus-Resumable', '1.0.0').header('Connection', 'close').type('text/plain').send(`injected ${status}`)
  })
  return { failed: () => failed }
}

for (const status of [409, 423, 500, 502, 503, 504]) {
  t.test(`PATCH answered ${status} twice: retried, then byte-exact`, async (t) => {
    let injected!: { failed: () => number }
    let log!: ReturnType<typeof logRequests>
    const server = await startServer(t, {}, (app) => {
      log = logRequests(app)
      injected = failPatches(app, status, 2)
    })
    const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, retryDelay: 1 })
    t.teardown(() => client.close())
    let last: TusProgress | undefined
    const url = await client.upload(content, { onProgress: (p) => { last = p } })
    t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
    t.equal(injected.failed(), 2, 'both failures were served')
    t.equal(last?.retries, 2, 'progress counts 2 retries')
    t.equal(log.count('HEAD'), 2, 'the offset was re-read with HEAD after each failure')
  })
}

t.test('460 (checksum mismatch) from the server: the chunk is sent again', async (t) => {
  let log!: ReturnType<typeof logRequests>
  const server = await startServer(t, {}, (app) => { log = logRequests(app) })
  let spoiled = 0
  const client = new TusClient({
    endpoint: server.endpoint,
    chunkSize: CHUNK,
    checksum: 'sha256',
    retryDelay: 1,
    // A digest damaged on the way, for the first two PATCHes: the server itself detects the mismatch.
    beforeRequest: (request) => {
      if (request.method === 'PATCH' && spoiled < 2) {
        spoiled++
        request.headers['Upload-Checksum'] = `sha256 ${Buffer.alloc(32, 7).toString('base64')}`
      }
    }
  })
  t.teardown(() => client.close())
  const url = await client.upload(content)
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
  t.equal(spoiled, 2)
  t.equal(log.count('PATCH'), 4 + 2, '4 chunk PATCHes (the first chunk rode in the POST) plus 2 resent')
  t.equal(log.patchBytes, 3 * CHUNK + 10 + 2 * CHUNK, 'each rejected chunk was sent again in full')
})

for (const status of [501, 400, 403, 404, 413]) {
  t.test(`PATCH answered ${status}: not retried, TusHttpError`, async (t) => {
    let log!: ReturnType<typeof logRequests>
    const server = await startServer(t, {}, (app) => {
      log = logRequests(app)
      failPatches(app, status, 100)
    })
    const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, retryDelay: 1 })
    t.teardown(() => client.close())
    const error = await client.upload(content).catch((err: unknown) => err) as TusHttpError
    t.ok(error instanceof TusHttpError, 'TusHttpError')
    t.equal(error.statusCode, status)
    t.equal(error.method, 'PATCH')
    t.match(error.url, `${server.endpoint}/`)
    t.equal(error.body, `injected ${status}`, 'the reply body is kept')
    t.equal(log.count('PATCH'), 1, 'one PATCH, no retry')
  })
}

t.test('maxRetries bounds the attempts; onShouldRetry replaces the rule', async (t) => {
  let log!: ReturnType<typeof logRequests>
  const server = await startServer(t, {}, (app) => {
    log = logRequests(app)
    failPatches(app, 503, 1000)
  })
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, retryDelay: 1, maxRetries: 3 })
  t.teardown(() => client.close())
  const error = await client.upload(content).catch((err: unknown) => err) as TusHttpError
  t.equal(error.statusCode, 503, 'the last failure is reported')
  t.equal(log.count('PATCH'), 4, '1 attempt + 3 retries')

  log.requests.length = 0
  const seen: Array<[number, number]> = []
  const never = new TusClient({
    endpoint: server.endpoint,
    chunkSize: CHUNK,
    retryDelay: 1,
    onShouldRetry: (err, attempt) => { seen.push([(err as TusHttpError).statusCode, attempt]); return false }
  })
  t.teardown(() => never.close())
  await t.rejects(never.upload(content), TusHttpError)
  t.same(seen, [[503, 1]], 'called with the error and the attempt number')
  t.equal(log.count('PATCH'), 1, 'not retried when it says no')
})

t.test('onShouldRetry may retry what the default rule would not', async (t) => {
  let injected!: { failed: () => number }
  const server = await startServer(t, {}, (app) => { injected = failPatches(app, 403, 1) })
  const client = new TusClient({
    endpoint: server.endpoint,
    chunkSize: CHUNK,
    retryDelay: 1,
    onShouldRetry: (err) => err instanceof TusHttpError && err.statusCode === 403
  })
  t.teardown(() => client.close())
  const url = await client.upload(content)
  t.equal(injected.failed(), 1)
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
})

t.test('a request that goes quiet times out and is retried', async (t) => {
  let stalled = 0
  const server = await startServer(t, {}, (app) => {
    app.addHook('onRequest', async (request) => {
      if (request.method === 'PATCH' && stalled === 0) {
        stalled++
        await sleep(1500)
      }
    })
  })
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, retryDelay: 1, timeout: 300 })
  t.teardown(() => client.close())
  let retries = 0
  const url = await client.upload(content, { onProgress: (p) => { retries = p.retries } })
  t.equal(stalled, 1)
  t.equal(retries, 1, 'one retry after the timeout')
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')

  const strict = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK, timeout: 300, maxRetries: 0 })
  t.teardown(() => strict.close())
  stalled = 0
  const error = await strict.upload(content).catch((err: unknown) => err)
  t.ok(error instanceof TusTimeoutError, 'without retries, TusTimeoutError')
  t.equal((error as TusTimeoutError).timeout, 300)
})

t.test('abort: during a request and during a retry wait', async (t) => {
  const server = await startServer(t, {}, (app) => {
    app.addHook('onRequest', async (request) => { if (request.method === 'PATCH') await sleep(200) })
  })
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 100)
  const started = Date.now()
  const error = await client.upload(content, { signal: controller.signal }).catch((err: unknown) => err) as TusAbortError
  t.ok(error instanceof TusAbortError, 'TusAbortError')
  t.equal(error.name, 'AbortError', 'named like other abort errors')
  t.equal(error.code, 'ABORT_ERR')
  t.ok(Date.now() - started < 1000, 'rejected promptly')

  const failing = await startServer(t, {}, (app) => { failPatches(app, 503, 1000) })
  const patient = new TusClient({ endpoint: failing.endpoint, chunkSize: CHUNK, retryDelay: 30_000 })
  t.teardown(() => patient.close())
  const waiting = new AbortController()
  setTimeout(() => waiting.abort(), 200)
  const begun = Date.now()
  t.ok(await patient.upload(content, { signal: waiting.signal }).catch((err: unknown) => err) instanceof TusAbortError, 'a retry wait is cut short')
  t.ok(Date.now() - begun < 2000, 'without waiting for the backoff')
  t.ok(await patient.upload(content, { signal: AbortSignal.abort() }).catch((err: unknown) => err) instanceof TusAbortError, 'an aborted signal stops before any request')
})

t.test('backoff: exponential, jittered, capped at 60 s; the default rule', async (t) => {
  t.equal(retryDelay(1, 500, 2, () => 0), 250, 'attempt 1, no jitter: half the base')
  t.equal(retryDelay(1, 500, 2, () => 1), 500, 'attempt 1, full jitter: the base')
  t.equal(retryDelay(4, 500, 2, () => 1), 4000, 'doubles each attempt')
  t.equal(retryDelay(30, 500, 2, () => 1), MAX_RETRY_DELAY, 'capped at 60 s')
  for (let i = 0; i < 100; i++) {
    const d = retryDelay(3, 1000, 2)
    if (d < 2000 || d > 4000) t.fail(`delay ${d} outside [2000, 4000]`)
  }
  const http = (statusCode: number): TusHttpError => new TusHttpError({ statusCode, body: '', method: 'PATCH', url: 'http://x/' })
  for (const status of [409, 423, 460, 500, 502, 503, 504]) t.ok(isRetryableError(http(status)), `${status} is retried`)
  for (const status of [400, 401, 403, 404, 410, 412, 413, 415, 501]) t.notOk(isRetryableError(http(status)), `${status} is not`)
  t.notOk(isRetryableError(new TusHttpError({ statusCode: 409, body: '', method: 'POST', url: 'http://x/' })), '409 on a creation is not')
  t.notOk(isRetryableError(new TusAbortError()), 'aborts are not')
})
