// fastify-tus (this repository's build) in Fastify with its S3 store: the
// bytes go to the bucket the runner created for this run (objects at
// `<BENCH_S3_PREFIX><id>`), the metadata to a fresh SQLite file. Otherwise the
// plugin's defaults. Endpoint, keys and part size: see s3Settings() in common.js.
import { dbPath, s3Settings, serveOurs } from './common.js'

const s3 = s3Settings()
await serveOurs('ours-s3', {
  db: dbPath(),
  s3: {
    bucket: s3.bucket,
    prefix: s3.prefix,
    endpoint: s3.endpoint,
    region: s3.region,
    partSize: s3.partSize,
    // The plugin sets forcePathStyle with an endpoint and the WHEN_REQUIRED checksums itself.
    clientOptions: { credentials: s3.credentials }
  }
})
