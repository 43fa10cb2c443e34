/**
 * SIGKILL during PATCH streams to an S3-backed server, at a different moment in
 * each trial: after a restart the offset never runs ahead of the bytes sent,
 * and the upload resumes from it to an object that is byte-exact in the bucket
 * (so every byte before the offset was stored by S3). Parts of 5 MiB, offsets
 * committed at every part.
 */
import t from 'tap'
import { join } from 'node:path'
import { tempDir } from './helpers/server.js'
import { patchThenKill, rng } from './helpers/crash.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, send, sha256 } from './helpers/http.js'
import { bucketContents, readObject, s3OrSkip, s3Options, testBucket } from './helpers/s3.js'

const endpoint = s3OrSkip(t)
const TRIALS = 12
const SIZE = (12 << 20) + 777
const PIECE = 256 << 10



if (endpoint !== undefined) {
  t.test(`${TRIALS} SIGKILL trials during PATCH on S3`, async (t) => {
    const bucket = await testBucket(t)
    const dir = tempDir(t)
    const env = { TUS_OPTIONS: JSON.stringify({ s3: s3Options(bucket), db: join(dir, 'db.sqlite'), checkpointBytes: 5 << 20 }) }
    const random = rng(20261129)
    const source = bytes(SIZE, 77)
    const offsets = new Set<number>()
    let server = await spawnServer(t, ['test/fixtures/server.js'], env)
    for (let trial = 1; trial <= TRIALS; trial++) {
      const created = await send('POST', `${server.origin}/files/`, { headers: { ...TUS, 'Upload-Length': String(SIZE) } })
      const path = new URL(created.headers.location as string).pathname
      const id = path.split('/').pop()!
      const killAt = 50 + Math.floor(random() * 700)
      const sent = await patchThenKill(server.origin + path, source, PIECE, 10, killAt, server.child)

      server = await spawnServer(t, ['test/fixtures/server.js'], env)
      const head = await send('HEAD', server.origin + path, { headers: TUS })
      t.equal(head.status, 200, `trial ${trial}: the upload survives`)
      const offset = Number(head.headers['upload-offset'])
      offsets.add(offset)
      t.ok(offset <= Math.min(sent, SIZE), `trial ${trial} (kill at ${killAt} ms): offset ${offset} <= ${Math.min(sent, SIZE)} bytes sent`)
      if (offset < SIZE) {
        const resumed = await send('PATCH', server.origin + path, { headers: { ...TUS, ...OCTET, 'Upload-Offset': String(offset) }, body: source.subarray(offset) })
        t.equal(resumed.status, 204, `trial ${trial}: resumed from ${offset}`)
      }
      const object = await readObject(bucket, id)
      t.equal(object === null ? null : sha256(object), sha256(source), `trial ${trial}: the object in the bucket is byte-exact`)
    }
    t.ok(offsets.size >= 3, `kills landed at ${offsets.size} different offsets: ${[...offsets].sort((a, b) => a - b).join(', ')}`)
    // A request a killed process had sent to S3 may still complete there after the finish
    // cleaned up (and Swift updates its listings asynchronously): such strays are what the
    // bucket lifecycle rule in the README is for. Every finished upload is one object.
    const left = await bucketContents(bucket)
    t.equal(left.objects.filter((key) => !key.startsWith('.tus/')).length, TRIALS, 'one object per finished upload, nothing else outside the tails\' prefix')
    t.comment(`left by killed writes: ${left.objects.length - TRIALS} tail(s), ${left.uploads.length} multipart upload(s)`)
  })
}
