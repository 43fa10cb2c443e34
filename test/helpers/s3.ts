/**
 * The S3-compatible server for tests (`../shared/s3/start-s3.sh`, started by
 * `.ci/run`): its endpoint and keys come from TUS_TEST_S3_ENDPOINT,
 * TUS_TEST_S3_ACCESS_KEY and TUS_TEST_S3_SECRET_KEY; without them the S3 tests
 * are skipped with one line saying so. Every test gets a bucket of its own,
 * emptied (objects and multipart uploads) and removed at teardown, and reads
 * what was stored straight from the bucket, not through the server.
 */
import { randomBytes } from 'node:crypto'
import {
  S3Client, CreateBucketCommand, DeleteBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command,
  ListMultipartUploadsCommand, AbortMultipartUploadCommand, DeleteObjectCommand
} from '@aws-sdk/client-s3'
import type { TusS3Options } from '../../lib/index.js'

interface Teardown { teardown(fn: () => unknown): void }

export const S3_ENDPOINT: string | undefined = process.env.TUS_TEST_S3_ENDPOINT === '' ? undefined : process.env.TUS_TEST_S3_ENDPOINT
export const S3_SKIP_REASON = 'S3 tests skipped: TUS_TEST_S3_ENDPOINT is not set (.ci/run starts the S3 server and sets it)'

// The plugin, like any AWS SDK user, takes its keys from the usual places; here, the environment
// (inherited by the server processes tests spawn).
if (S3_ENDPOINT !== undefined) {
  process.env.AWS_ACCESS_KEY_ID = process.env.TUS_TEST_S3_ACCESS_KEY ?? 'tusaccess'
  process.env.AWS_SECRET_ACCESS_KEY = process.env.TUS_TEST_S3_SECRET_KEY ?? 'tussecret'
  process.env.AWS_REGION ??= 'us-east-1'
}

/** The endpoint, or undefined after marking the whole test file skipped (one visible line). */
export function s3OrSkip (t: { plan(n: number, reason?: string): void }): string | undefined {
  if (S3_ENDPOINT === undefined) t.plan(0, S3_SKIP_REASON)
  return S3_ENDPOINT
}

let client: S3Client | undefined
export function s3 (): S3Client {
  client ??= new S3Client({
    endpoint: S3_ENDPOINT, region: 'us-east-1', forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED'
  })
  return client
}

/** A new bucket, emptied and removed at teardown (register it before the servers that use it). */
export async function testBucket (t: Teardown): Promise<string> {
  const bucket = `tus-test-${process.pid}-${randomBytes(4).toString('hex')}`
  await s3().send(new CreateBucketCommand({ Bucket: bucket }))
  t.teardown(async () => {
    const { objects, uploads } = await bucketContents(bucket)
    for (const u of uploads) await s3().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId })).catch(() => {})
    for (const key of objects) await s3().send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => {})
    await s3().send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {})
  })
  return bucket
}

/** The plugin's `s3` option for a test bucket. */
export function s3Options (bucket: string, more: Partial<TusS3Options> = {}): TusS3Options {
  return { bucket, endpoint: S3_ENDPOINT!, region: 'us-east-1', partSize: 5 << 20, ...more }
}

/** Every object key and in-progress multipart upload in the bucket. */
export async function bucketContents (bucket: string): Promise<{ objects: string[]; uploads: Array<{ key: string; uploadId: string }> }> {
  const objects: string[] = []
  let ContinuationToken: string | undefined
  do {
    const page = await s3().send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken }))
    for (const o of page.Contents ?? []) objects.push(o.Key!)
    ContinuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (ContinuationToken !== undefined)
  const listed = await s3().send(new ListMultipartUploadsCommand({ Bucket: bucket }))
  const uploads = (listed.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }))
  return { objects: objects.sort(), uploads }
}

/** An object's bytes, or null when there is none. */
export async function readObject (bucket: string, key: string): Promise<Buffer | null> {
  try {
    const res = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    return Buffer.from(await res.Body!.transformToByteArray())
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return null
    throw err
  }
}

/** An object's Content-Type. */
export async function objectType (bucket: string, key: string): Promise<string | undefined> {
  return (await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentType
}
