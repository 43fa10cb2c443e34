/**
 * The S3 store against a real S3-compatible server (Swift's s3api, with AWS's
 * 5 MiB minimum part size): every tus extension, checked by reading the bucket
 * itself (the finished object at `<prefix><id>`, nothing else left behind).
 * Part size 5 MiB, so an upload of 12 MiB is two full parts and a tail. The
 * scenarios the Azure store shares are in helpers/object-scenarios.ts; those
 * only S3 has are here.
 */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { OCTET, TUS, bytes, send } from './helpers/http.js'
import { idOf } from './helpers/tus.js'
import { bucketContents, readObject, s3OrSkip, s3Options, testBucket } from './helpers/s3.js'
import {
  checksumAcrossBoundary, chunkedRefused, tailFromMemory, clientGoesAway, lostFinishRecorded, lostFinishTailsLeft, partsBecomeOneObject, smallEmptyDeferred, terminationAndExpiry
} from './helpers/object-scenarios.js'
import { S3_STORAGE } from './helpers/object-storages.js'

const endpoint = s3OrSkip(t)
const MiB = 1 << 20

if (endpoint !== undefined) {
  partsBecomeOneObject(t, S3_STORAGE)
  smallEmptyDeferred(t, S3_STORAGE)
  checksumAcrossBoundary(t, S3_STORAGE)
  tailFromMemory(t, S3_STORAGE)
  terminationAndExpiry(t, S3_STORAGE)

  t.test('concatenation: server-side copy of parts of 5 MiB and more, a streamed fallback for small ones', async (t) => {
    const bucket = await testBucket(t)
    const server = await startServer(t, { s3: s3Options(bucket) })
    for (const [label, sizes] of [['copied', [5 * MiB, 6 * MiB + 3, 1000]], ['streamed', [1000, 6 * MiB, 17]]] as const) {
      const parts = sizes.map((size, i) => bytes(size, 20 + i))
      const urls: string[] = []
      for (const part of parts) {
        const res = await send('POST', `${server.endpoint}/`, { headers: { ...TUS, ...OCTET, 'Upload-Length': String(part.length), 'Upload-Concat': 'partial' }, body: part })
        t.equal(res.status, 201)
        urls.push(String(res.headers.location))
      }
      const final = await send('POST', `${server.endpoint}/`, { headers: { ...TUS, 'Upload-Concat': `final;${urls.map((u) => new URL(u).pathname).join(' ')}` } })
      t.equal(final.status, 201, `${label}: final created`)
      const object = await readObject(bucket, idOf(String(final.headers.location)))
      t.ok(object?.equals(Buffer.concat(parts)), `${label}: the final object is the parts in order`)
    }
    t.same((await bucketContents(bucket)).uploads, [], 'no multipart upload left')
  })

  lostFinishRecorded(t, S3_STORAGE)
  lostFinishTailsLeft(t, S3_STORAGE)
  clientGoesAway(t, S3_STORAGE)
  chunkedRefused(t, S3_STORAGE)

  t.test('options: mistakes fail at register with the field named', async (t) => {
    const { default: Fastify } = await import('fastify')
    const { default: tus } = await import('../lib/index.js')
    for (const [s3, pattern] of [
      [{}, /s3\.bucket/], [{ bucket: 'B_ad' }, /s3\.bucket/], [{ bucket: 'ok-bucket', prefix: 'noslash' }, /s3\.prefix/],
      [{ bucket: 'ok-bucket', partSize: 1024 }, /s3\.partSize/], [{ bucket: 'ok-bucket', endpoint: 'ftp://x' }, /s3\.endpoint/],
      [{ bucket: 'ok-bucket', nope: 1 }, /s3\.nope/]
    ] as const) {
      await t.rejects(async () => Fastify().register(tus, { s3: s3 as never }).ready(), pattern, JSON.stringify(s3))
    }
    await t.rejects(async () => Fastify().register(tus, { s3: { bucket: 'ok-bucket', partSize: 5 * MiB }, maxSize: 60 * 1024 ** 3, db: ':memory:' }).ready(), /raise s3\.partSize/, 'maxSize beyond 10,000 parts')
  })
}
