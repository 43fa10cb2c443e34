// The client asks the server's OPTIONS once for all its operations, and that
// request belongs to none of them: one caller's abort ends only its own wait;
// the request itself is aborted once every caller waiting for it has aborted,
// and that failure is not cached (the next operation asks again).
import t from 'tap'
import { TusAbortError, TusClient } from '../lib/client/index.js'
import { startServer, type TestServer } from './helpers/server.js'
import { assertStored, sleep } from './helpers/tus.js'
import { failureOf, logRequests, type RequestLog } from './helpers/client-env.js'

const DELAY = 400

/** A server that answers OPTIONS after DELAY ms, and counts the OPTIONS requests whose client went away meanwhile. */
async function slowOptions (t: Parameters<typeof startServer>[0]): Promise<{ server: TestServer; log: RequestLog; abandoned: () => number }> {
  let log!: RequestLog
  let abandoned = 0
  const server = await startServer(t, {}, (app) => {
    log = logRequests(app)
    app.addHook('onRequest', async (request) => {
      if (request.method !== 'OPTIONS') return
      await sleep(DELAY)
      if (request.raw.socket.destroyed) abandoned++
    })
  })
  return { server, log, abandoned: () => abandoned }
}

t.test('one caller aborting while OPTIONS is under way does not fail the other caller waiting for it', async (t) => {
  const { server, log, abandoned } = await slowOptions(t)
  const client = new TusClient({ endpoint: server.endpoint })
  t.teardown(() => client.close({ timeout: 0 }))
  const first = new AbortController()
  const aborted = client.upload(Buffer.from('aborted by its caller'), { signal: first.signal })
  const content = Buffer.from('the other upload, not aborted')
  const other = client.upload(content)
  await sleep(DELAY / 4)
  first.abort()
  t.ok(await failureOf(aborted) instanceof TusAbortError, 'the aborted caller gets TusAbortError at once')
  const url = await other
  await assertStored(t, url, server.storage, content, 'the other upload')
  t.equal(log.count('OPTIONS'), 1, 'one OPTIONS for both')
  t.equal(abandoned(), 0, 'the OPTIONS request was not cut')
  t.equal(log.count('POST'), 1, 'only the other upload was created')
})

t.test('when every caller waiting for OPTIONS aborted, the request is aborted and its failure is not cached', async (t) => {
  const { server, log, abandoned } = await slowOptions(t)
  const client = new TusClient({ endpoint: server.endpoint })
  t.teardown(() => client.close({ timeout: 0 }))
  const controllers = [new AbortController(), new AbortController()]
  const uploads = controllers.map(async (c, i) => client.upload(Buffer.from(`upload ${i}`), { signal: c.signal }))
  await sleep(DELAY / 4)
  for (const c of controllers) c.abort()
  for (const upload of uploads) t.ok(await failureOf(upload) instanceof TusAbortError, 'TusAbortError')
  await sleep(DELAY)
  t.equal(abandoned(), 1, 'the server saw the OPTIONS request go away')
  const content = Buffer.from('after the aborted OPTIONS')
  await assertStored(t, await client.upload(content), server.storage, content, 'a later upload')
  t.equal(log.count('OPTIONS'), 2, 'asked again: the aborted request was not cached')
})
