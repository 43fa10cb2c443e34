// Shared bits of the benchmark servers: where to store, how to announce, how to stop.
import process from 'node:process'

export function uploadDir () {
  const dir = process.env.BENCH_UPLOAD_DIR
  if (!dir) throw new Error('BENCH_UPLOAD_DIR is required')
  return dir
}

/** The runner waits for this exact line on stdout. */
export function announce (port, path = '/files/') {
  process.stdout.write(`listening at http://127.0.0.1:${port}${path}\n`)
}

/** A clean exit on SIGTERM/SIGINT, so --cpu-prof can write its profile. */
export function onStop (close) {
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    Promise.resolve()
      .then(close)
      .then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
    // Keep-alive sockets may hold server.close(); do not wait forever.
    setTimeout(() => process.exit(0), 3000).unref()
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

/**
 * Where and how the S3 servers (ours-s3, tus-s3, raw-s3) store: the runner
 * creates a fresh bucket per run and passes it with the endpoint, the part size
 * and the keys, so all three write to the same S3 server the same way.
 * Region us-east-1 (S3-compatible servers accept any), path-style addressing,
 * and the SDK's checksums only when an operation requires them: its default
 * (CRC32 trailers, aws-chunked stream bodies) is refused by several
 * S3-compatible servers, Swift's s3api among them.
 */
export function s3Settings () {
  const bucket = process.env.BENCH_S3_BUCKET
  if (!bucket) throw new Error('BENCH_S3_BUCKET is required')
  const partSize = Number(process.env.BENCH_S3_PART_SIZE ?? 8 * 1024 * 1024)
  if (!Number.isInteger(partSize) || partSize < 1) throw new Error('BENCH_S3_PART_SIZE must be a positive integer')
  return {
    bucket,
    prefix: process.env.BENCH_S3_PREFIX ?? '',
    endpoint: process.env.BENCH_S3_ENDPOINT ?? 'http://127.0.0.1:9000',
    region: 'us-east-1',
    partSize,
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'tusaccess',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'tussecret'
    }
  }
}

/** S3Client options for s3Settings(): the same in every S3 server of the benchmark (and the runner's checks). */
export function s3ClientConfig (s3) {
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED'
  }
}

/**
 * A failure answered 500, on stderr: the stack, then one line the runner's
 * failure message (the last 500 characters of stderr) will show.
 */
export function logFailure (label, err) {
  const status = err?.$metadata?.httpStatusCode
  console.error(err)
  console.error(`${label} failed: ${err?.name ?? 'Error'}: ${err?.message ?? err}${err?.code ? ` (${err.code})` : ''}${status ? ` (S3 answered ${status})` : ''}`)
}
