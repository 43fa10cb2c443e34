// @tus/server with @tus/s3-store, mounted in Fastify as tus-fastify.js mounts
// it (serveTus() in common.js: a pass-through body parser, hijacked replies
// handed to tusServer.handle).
// The store's defaults otherwise: finished objects at `<id>`, a `<id>.info`
// object beside each, parts split through temporary files in os.tmpdir() (the
// runner points TMPDIR into the run's own directory) and uploaded up to 60 at a
// time. No expiration, so no object tagging (which Swift's s3api does not
// implement). Endpoint, keys and part size: see s3Settings() in common.js.
import { S3Store } from '@tus/s3-store'
import { s3Settings, s3ClientConfig, serveTus } from './common.js'

const s3 = s3Settings()
await serveTus('tus-s3', new S3Store({
  partSize: s3.partSize,
  s3ClientConfig: { bucket: s3.bucket, ...s3ClientConfig(s3) }
}))
