/**
 * Instances that share only the database and the bucket: three `fastify-tus
 * serve --s3-bucket` instances on one PostgreSQL schema, each with an empty
 * upload directory of its own, behind a round-robin balancer; 24 tus-js-client
 * uploads with the default retries; one instance SIGKILLed mid-run. Every
 * upload finishes byte-exact, read back from the bucket by key, and nothing
 * else stays in the bucket.
 */
import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { bytes } from './helpers/http.js'
import { sleep } from './helpers/tus.js'
import { postgresOrSkip } from './helpers/postgres.js'
import { bucketContents, readObject, s3OrSkip, testBucket } from './helpers/s3.js'
import { cluster, statusSummary, upload } from './helpers/cluster.js'

const url = postgresOrSkip(t)
const endpoint = url === undefined ? undefined : s3OrSkip(t)

if (url !== undefined && endpoint !== undefined) {
  t.test('three instances on PostgreSQL and one bucket, no shared directory, one SIGKILLed mid-run', async (t) => {
    const bucket = await testBucket(t)
    const s3 = ['--s3-bucket', bucket, '--s3-prefix', 'up/', '--s3-endpoint', endpoint, '--s3-region', 'us-east-1', '--s3-part-size', String(5 << 20)]
    const { proxy, instances, uploadDir } = await cluster(t, url, 4 << 20, s3, true)
    const UPLOADS = 24
    const sources = Array.from({ length: UPLOADS }, (_, i) => bytes((6 << 20) + i * 70_001, 3100 + i))
    const runs = sources.map(async (data) => upload(`${proxy.origin}/files/`, data, 2 << 20))
    await sleep(1500)
    const doomed = instances[2]!
    doomed.child.kill('SIGKILL')
    const killedAt = Date.now()
    const results = await Promise.all(runs)
    t.comment(`all done ${Date.now() - killedAt} ms after the kill; answers: ${statusSummary(proxy)}; longest 423 streak: ${proxy.longest423()} ms`)
    t.same(results.filter((r) => r.error !== undefined).map((r) => String(r.error)), [], 'no upload failed')
    let exact = 0
    for (const [i, r] of results.entries()) if (r.id !== undefined && (await readObject(bucket, `up/${r.id}`))?.equals(sources[i]!) === true) exact++
    t.equal(exact, UPLOADS, `all ${UPLOADS} uploads byte-exact in the bucket at up/<id>`)
    // A request the killed instance had in flight may still complete at S3 after the finish
    // cleaned up: strays under the tails' prefix are the bucket lifecycle rule's (README).
    const contents = await bucketContents(bucket)
    t.equal(contents.objects.filter((key) => !key.startsWith('up/.tus/')).length, UPLOADS, 'one object per finished upload, nothing else outside the tails\' prefix')
    t.comment(`left by the killed instance: ${contents.objects.length - UPLOADS} tail(s), ${contents.uploads.length} multipart upload(s)`)
    const dirs = readdirSync(join(uploadDir, '..')).filter((name) => name.startsWith('instance-'))
    t.same(dirs.flatMap((d) => readdirSync(join(uploadDir, '..', d))), [], 'nothing was written to any instance\'s upload directory')
  })
}
