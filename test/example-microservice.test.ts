// examples/microservice: uploads finished on the service are forwarded by its
// onComplete hook, through app.tusClient, to a second tus server: byte for byte,
// with their metadata, and the remote URL is recorded at GET /forwarded/:id.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { TusClient } from '../lib/client/index.js'
import { startServer, tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, send } from './helpers/http.js'
import { idOf, waitFor } from './helpers/tus.js'

interface Forwarded { id: string; key: string; url: string; size: number }

t.test('examples/microservice forwards finished uploads to another tus server', async (t) => {
  const remote = await startServer(t)
  const dir = tempDir(t)
  const service = await spawnServer(t, ['examples/microservice/server.js'], {
    PORT: '0',
    UPLOAD_DIR: join(dir, 'uploads'),
    DB_PATH: join(dir, 'uploads.db'),
    STATE_DIR: join(dir, 'forwarded'),
    FORWARD_TO: remote.endpoint
  })
  const client = new TusClient({ endpoint: `${service.origin}/files`, chunkSize: 1024 * 1024 })
  t.teardown(() => client.close())

  const forwardedOf = async (id: string): Promise<Forwarded> => {
    let record: Forwarded | undefined
    await waitFor(async () => {
      const res = await send('GET', `${service.origin}/forwarded/${id}`)
      if (res.status === 200) record = JSON.parse(res.text) as Forwarded
      return record !== undefined
    }, 30_000, `upload ${id} forwarded`)
    return record!
  }

  // Three uploads at once: a few MiB in 1 MiB PATCHes; one in two partial uploads
  // joined by a final upload (only the final one is a file, so only it is forwarded);
  // one sent raw, with a metadata key that has no value.
  const big = bytes(3 * 1024 * 1024 + 12_345, 21)
  const bigMeta = { filename: 'report.pdf', filetype: 'application/pdf', note: 'ünïcödé, with a comma ✓' }
  const joined = bytes(2 * 1024 * 1024 + 7, 22)
  const small = bytes(200_000, 23)
  const [bigUrl, joinedUrl, smallUrl] = await Promise.all([
    client.upload(big, { metadata: bigMeta }),
    client.upload(joined, { metadata: { filename: 'joined.bin' }, parallel: 2 }),
    (async () => {
      const res = await send('POST', `${service.origin}/files/`, {
        headers: { ...TUS, ...OCTET, 'Upload-Length': String(small.length), 'Upload-Metadata': `filename ${Buffer.from('small.bin').toString('base64')},flag` },
        body: small
      })
      t.equal(res.status, 201)
      return res.headers.location as string
    })()
  ])

  const cases = [
    { label: 'a few MiB', url: bigUrl, source: big, metadata: bigMeta },
    { label: 'concatenated', url: joinedUrl, source: joined, metadata: { filename: 'joined.bin' } },
    { label: 'raw, valueless key', url: smallUrl, source: small, metadata: { filename: 'small.bin', flag: null } }
  ]
  for (const { label, url, source, metadata } of cases) {
    const id = idOf(url)
    const record = await forwardedOf(id)
    t.equal(record.id, id, `${label}: recorded`)
    t.equal(record.size, source.length)
    t.ok(record.url.startsWith(`${remote.endpoint}/`), `${label}: the remote URL is on the second server`)
    const remoteId = idOf(record.url)
    const upload = await remote.app.tus.get(remoteId)
    t.ok(upload?.completedAt, `${label}: finished on the second server`)
    t.same({ ...upload?.metadata }, metadata, `${label}: metadata travelled`)
    const stored = readFileSync(join(remote.uploadDir, remoteId))
    t.equal(stored.length, source.length, `${label}: same length`)
    t.ok(stored.equals(source), `${label}: byte for byte`)
  }

  t.equal((await remote.app.tus.list({ status: 'all' })).length, 3, 'exactly the three files reached the second server (no partial uploads)')
  t.equal((await send('GET', `${service.origin}/forwarded/nope`)).status, 404)
  t.equal((await send('GET', `${service.origin}/forwarded/..%2F..%2Fetc`)).status, 404, 'an id that is not an upload id is not a path')
})
