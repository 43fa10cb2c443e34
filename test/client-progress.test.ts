// onProgress: acknowledged bytes, total, percent, speed over a sliding window, ETA, chunks and retries.
import t from 'tap'
import { TusClient, type TusProgress } from '../lib/client/index.js'
import { ProgressTracker } from '../lib/client/progress.js'
import { startServer } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { sleep } from './helpers/tus.js'
import { storedAt, streamOf } from './helpers/client-env.js'

const CHUNK = 32 * 1024

t.test('a Buffer upload reports every acknowledged chunk up to 100 %', async (t) => {
  const server = await startServer(t, {}, (app) => {
    // Slow enough that the speed is measured over real time.
    app.addHook('onRequest', async (request) => { if (request.method === 'PATCH') await sleep(20) })
  })
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const content = bytes(10 * CHUNK + 100, 4)
  const events: TusProgress[] = []
  const url = await client.upload(content, { onProgress: (p) => events.push(p) })
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')

  t.same(events[0], { bytesUploaded: 0, bytesTotal: content.length, percent: 0, speed: 0, eta: null, chunks: 0, retries: 0 }, 'first event: nothing sent yet')
  const last = events[events.length - 1]!
  t.equal(last.bytesUploaded, content.length, 'last event: every byte')
  t.equal(last.percent, 100, 'last event: 100 %')
  t.equal(last.eta, 0, 'last event: nothing left')
  t.equal(last.chunks, 11, 'one chunk per request (the first in the POST)')
  t.equal(last.retries, 0, 'no retries')
  for (let i = 1; i < events.length; i++) {
    t.ok(events[i]!.bytesUploaded >= events[i - 1]!.bytesUploaded, `event ${i}: bytesUploaded never goes back`)
  }
  const middle = events.filter((e) => e.bytesUploaded > 0 && e.bytesUploaded < content.length)
  t.ok(middle.length >= 9, 'events between start and end')
  for (const event of middle) {
    t.ok(event.speed > 0, `speed is positive at ${event.bytesUploaded}`)
    t.ok(event.eta !== null && event.eta > 0, `eta is positive at ${event.bytesUploaded}`)
    t.equal(event.percent, (event.bytesUploaded / content.length) * 100, 'percent follows bytes')
  }
  // Each PATCH waits >= 20 ms: once a few have gone, the speed cannot be far above one chunk per 20 ms
  // (the first chunk rode in the POST, which does not wait).
  const later = middle.filter((e) => e.bytesUploaded >= 4 * CHUNK)
  t.ok(later.length > 0 && later.every((e) => e.speed <= CHUNK / 0.02 * 1.5), 'speed is bounded by the server\'s pace')
})

t.test('a stream reports an unknown total until its end', async (t) => {
  const server = await startServer(t)
  const client = new TusClient({ endpoint: server.endpoint, chunkSize: CHUNK })
  t.teardown(() => client.close())
  const content = bytes(5 * CHUNK + 7, 5)
  const events: TusProgress[] = []
  const url = await client.upload(streamOf(content, 1000), { onProgress: (p) => events.push(p) })
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
  const unknown = events.filter((e) => e.bytesTotal === null)
  t.ok(unknown.length > 0, 'some events have no total')
  t.ok(unknown.every((e) => e.percent === null && e.eta === null), 'without a total, percent and eta are null')
  const last = events[events.length - 1]!
  t.equal(last.bytesTotal, content.length, 'the total is known at the end')
  t.equal(last.percent, 100)
})

t.test('speed is measured over a sliding window of a few seconds', async (t) => {
  let now = 0
  const tracker = new ProgressTracker(100_000_000, () => now)
  tracker.report(0, 0)
  // 10 s at 1 MB/s, reported every 100 ms.
  for (let i = 1; i <= 100; i++) {
    now = i * 100
    tracker.report(0, i * 100_000, { chunk: true })
  }
  t.equal(Math.round(tracker.snapshot().speed), 1_000_000, '1 MB/s')
  // Then 3 s at 4 MB/s: a whole-run average would say ~1.7 MB/s; the window says more.
  for (let i = 1; i <= 30; i++) {
    now = 10_000 + i * 100
    tracker.report(0, 10_000_000 + i * 400_000, { chunk: true })
  }
  const fast = tracker.snapshot()
  t.ok(fast.speed > 2_500_000, `the window follows the new pace (${Math.round(fast.speed)} B/s)`)
  t.equal(Math.round(fast.eta!), Math.round((100_000_000 - 22_000_000) / fast.speed), 'eta = bytes left / speed')
  t.equal(fast.chunks, 130)

  // A resumed upload: bytes already on the server are not speed.
  now = 0
  const resumed = new ProgressTracker(1000, () => now)
  resumed.report(0, 600)
  now = 1000
  resumed.report(0, 700, { chunk: true })
  t.equal(resumed.snapshot().speed, 100, 'only the bytes sent in this session count')
  t.equal(resumed.snapshot().percent, 70)
})
