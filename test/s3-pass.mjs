// The protocol tests of the server, run again on the S3 store (`npm test` runs
// this after the PostgreSQL pass): the same files as test/postgres-pass.mjs,
// with TUS_TEST_STORE=s3, so startServer() gives every server a bucket of its
// own on the S3-compatible server at TUS_TEST_S3_ENDPOINT and the stored-bytes
// helpers read the bucket. Once with SQLite, and once more with PostgreSQL
// (TUS_TEST_BACKEND=postgres) when TUS_TEST_POSTGRES_URL is set. Without
// TUS_TEST_S3_ENDPOINT the pass is skipped, with one line saying so.
//
// Every server gets a key prefix of its own in one bucket made here for the
// whole pass (TUS_TEST_S3_BUCKET), emptied and removed at its end: on Swift the
// first requests to a new bucket are slow, so a bucket per server or per file
// would cost more than the tests themselves.
//
// Extra arguments go to tap (e.g. a --grep, or test files to run instead of
// the whole list).
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PROTOCOL_TESTS } from './postgres-pass.mjs'

// Disk-only tests (fsync, a full disk, the file system itself: write-errors,
// crash-consistency) are not in the protocol list; should one be added there,
// it goes here too.
const DISK_ONLY = new Set([])
const S3_TESTS = PROTOCOL_TESTS.filter((file) => !DISK_ONLY.has(file))

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (!process.env.TUS_TEST_S3_ENDPOINT) {
  process.stdout.write('# S3 pass of the protocol tests skipped: TUS_TEST_S3_ENDPOINT is not set\n')
  process.exit(0)
}

const args = process.argv.slice(2)
const files = args.some((a) => a.endsWith('.ts')) ? [] : S3_TESTS
const runs = [{ label: 'SQLite + S3', env: { TUS_TEST_BACKEND: 'sqlite' } }]
if (process.env.TUS_TEST_POSTGRES_URL) runs.push({ label: 'PostgreSQL + S3', env: { TUS_TEST_BACKEND: 'postgres' } })
else process.stdout.write('# S3 pass on PostgreSQL skipped: TUS_TEST_POSTGRES_URL is not set\n')

const {
  S3Client, CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, ListMultipartUploadsCommand,
  CreateMultipartUploadCommand, AbortMultipartUploadCommand
} = await import('@aws-sdk/client-s3')
const client = new S3Client({
  endpoint: process.env.TUS_TEST_S3_ENDPOINT,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: process.env.TUS_TEST_S3_ACCESS_KEY ?? 'tusaccess', secretAccessKey: process.env.TUS_TEST_S3_SECRET_KEY ?? 'tussecret' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED'
})
const bucket = process.env.TUS_TEST_S3_BUCKET || `tus-pass-${process.pid}-${randomBytes(4).toString('hex')}`
const made = bucket !== process.env.TUS_TEST_S3_BUCKET
if (made) {
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  // Swift makes a bucket's segments container at its first multipart upload, and two first ones
  // at once (two test files in parallel) can fail with NoSuchBucket: one goes first, alone.
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: '.prime' }))
  await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: '.prime', UploadId }))
}

/** Whatever the servers left (nothing, normally: each empties its prefix) goes, then the bucket. */
async function removeBucket () {
  const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
  for (const u of listed.Uploads ?? []) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => {})
  let left = 0
  for (let page; page === undefined || page.IsTruncated === true;) {
    page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: page?.NextContinuationToken }))
    for (const o of page.Contents ?? []) { left++; await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key })).catch(() => {}) }
  }
  if (left > 0 || (listed.Uploads ?? []).length > 0) process.stdout.write(`# S3 pass: ${left} objects and ${(listed.Uploads ?? []).length} multipart uploads were left in ${bucket}\n`)
  await client.send(new DeleteBucketCommand({ Bucket: bucket }))
}

let failed = 0
const took = []
for (const run of runs) {
  process.stdout.write(`# S3 pass (${run.label}): ${files.length === 0 ? 'the given' : files.length} protocol test files on ${process.env.TUS_TEST_S3_ENDPOINT}\n`)
  const started = Date.now()
  const result = spawnSync(join(root, 'node_modules', '.bin', 'tap'), [...files, ...args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, ...run.env, TUS_TEST_STORE: 's3', TUS_TEST_S3_BUCKET: bucket }
  })
  if (result.error !== undefined) throw result.error
  took.push(`${run.label} ${((Date.now() - started) / 1000).toFixed(1)} s${result.status === 0 ? '' : ' (failed)'}`)
  if (result.status !== 0) failed++
}
if (made) await removeBucket()
process.stdout.write(`# S3 pass took: ${took.join(', ')}\n`)
process.exit(failed === 0 ? 0 : 1)
