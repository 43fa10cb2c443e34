// Shared bits of the benchmark servers: where to store, how to announce, how to stop,
// the raw baselines' HTTP side, ours and @tus/server mounted in Fastify.
import process from 'node:process'
import http from 'node:http'
import { randomBytes } from 'node:crypto'

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
 * Where and how the Azure servers (ours-azure, tus-azure, raw-azure) store: the
 * runner creates a fresh container per run (on the Azurite it started, or the
 * account of BENCH_AZURE_CONNECTION_STRING) and passes it with the connection
 * string, the block size and the blob names' prefix.
 */
export function azureSettings () {
  const container = process.env.BENCH_AZURE_CONTAINER
  if (!container) throw new Error('BENCH_AZURE_CONTAINER is required')
  const connectionString = process.env.BENCH_AZURE_CONNECTION_STRING
  if (!connectionString) throw new Error('BENCH_AZURE_CONNECTION_STRING is required')
  const blockSize = Number(process.env.BENCH_AZURE_BLOCK_SIZE ?? 8 * 1024 * 1024)
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new Error('BENCH_AZURE_BLOCK_SIZE must be a positive integer')
  return { container, connectionString, blockSize, prefix: process.env.BENCH_AZURE_PREFIX ?? '' }
}

/**
 * @tus/server with `datastore`, mounted in Fastify the usual way: a parser that
 * hands the body stream through untouched, and routes that give the raw request
 * and response to tusServer.handle after reply.hijack(). @tus/server answers a
 * failure with 500 and logs nothing: this says why on stderr (observing only,
 * the answer is unchanged), which the runner quotes when a run fails. Fastify and
 * @tus/server are imported here, not at the top, so that the other servers' RSS
 * does not carry @tus/server.
 */
export async function serveTus (label, datastore) {
  const { default: Fastify } = await import('fastify')
  const { Server } = await import('@tus/server')
  const onResponseError = (_req, err) => { if ((err?.status_code ?? 500) >= 500) logFailure(label, err) }
  const tusServer = new Server({ path: '/files', datastore, onResponseError })
  const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
  app.addContentTypeParser('application/offset+octet-stream', (_request, _payload, done) => done(null))
  const handler = (request, reply) => {
    reply.hijack()
    tusServer.handle(request.raw, reply.raw)
  }
  const methods = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS']
  app.route({ method: methods, url: '/files', exposeHeadRoute: false, handler })
  app.route({ method: methods, url: '/files/*', exposeHeadRoute: false, handler })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  announce(new URL(address).port)
  onStop(() => app.close())
}

/**
 * The raw baselines' tus server on node:http (raw.js, and raw-s3.js and
 * raw-azure.js through raw-objects.js): POST, PATCH and HEAD at /files/, no
 * validation, all state in this process's memory.
 * - create(id, length): a new upload's state, with `offset` (0) and `length`,
 *   made before its body (creation-with-upload), if any, is read;
 * - write(req, upload): takes a body, and moves upload.offset past it.
 * Without `chunked`, a body without Content-Length is answered 411.
 * With `inFastify` (raw-fastify), the same handler runs in a Fastify app (routes,
 * a content-type parser that leaves the body alone, the reply hijacked): what a
 * Fastify plugin costs at the least, framework included.
 */
export async function serveRaw (label, { chunked, create, write, inFastify = false }) {
  const handle = rawHandler({ chunked, create, write })
  const run = (req, res) => {
    handle(req, res).catch((err) => {
      logFailure(label, err)
      if (!res.headersSent) res.writeHead(500).end()
      else res.destroy()
    })
  }
  if (inFastify) {
    const { default: Fastify } = await import('fastify')
    const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
    app.addContentTypeParser('application/offset+octet-stream', (_request, _payload, done) => done(null))
    const handler = (request, reply) => {
      reply.hijack()
      run(request.raw, reply.raw)
    }
    app.route({ method: ['POST', 'PATCH', 'HEAD'], url: '/files', exposeHeadRoute: false, handler })
    app.route({ method: ['POST', 'PATCH', 'HEAD'], url: '/files/*', exposeHeadRoute: false, handler })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    announce(new URL(address).port)
    onStop(() => app.close())
    return
  }
  const server = http.createServer(run)
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1', () => announce(server.address().port))
  onStop(() => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
}

function rawHandler ({ chunked, create, write }) {
  const PREFIX = '/files/'
  const uploads = new Map()
  const hasBody = (req) => (chunked && req.headers['transfer-encoding'] !== undefined) || Number(req.headers['content-length'] ?? 0) > 0
  return async function handle (req, res) {
    const id = req.url.startsWith(PREFIX) ? req.url.slice(PREFIX.length) : ''
    if (req.method === 'POST' && (req.url === PREFIX || req.url === '/files')) {
      if (!chunked && req.headers['transfer-encoding'] !== undefined) { req.resume(); res.writeHead(411).end(); return }
      const newId = randomBytes(16).toString('hex')
      const upload = await create(newId, Number(req.headers['upload-length'] ?? 0))
      uploads.set(newId, upload)
      const headers = { Location: `http://${req.headers.host}${PREFIX}${newId}`, 'Tus-Resumable': '1.0.0' }
      if (hasBody(req)) {
        await write(req, upload)
        headers['Upload-Offset'] = String(upload.offset)
      } else {
        req.resume()
      }
      res.writeHead(201, headers).end()
      return
    }
    const upload = uploads.get(id)
    if (upload === undefined) {
      req.resume()
      res.writeHead(404).end()
      return
    }
    if (req.method === 'PATCH') {
      if (!chunked && req.headers['content-length'] === undefined) { req.resume(); res.writeHead(411).end(); return }
      await write(req, upload)
      res.writeHead(204, { 'Upload-Offset': String(upload.offset), 'Tus-Resumable': '1.0.0' }).end()
    } else if (req.method === 'HEAD') {
      res.writeHead(200, { 'Upload-Offset': String(upload.offset), 'Upload-Length': String(upload.length), 'Tus-Resumable': '1.0.0', 'Cache-Control': 'no-store' }).end()
    } else {
      req.resume()
      res.writeHead(405).end()
    }
  }
}

/**
 * fastify-tus (this repository's build) in Fastify, at /files, with `options`
 * (ours-s3, ours-azure). Without a logger a failure is answered 500 silently:
 * an onError hook says why on stderr (observing only, the answer is unchanged),
 * which the runner quotes when a run fails.
 */
export async function serveOurs (label, options) {
  const { default: Fastify } = await import('fastify')
  const { default: tus } = await import('../../dist/lib/index.js')
  const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
  app.addHook('onError', async (_request, _reply, err) => { if ((err.statusCode ?? 500) >= 500) logFailure(label, err) })
  await app.register(tus, { prefix: '/files', ...options })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  announce(new URL(address).port)
  onStop(() => app.close())
}

/** BENCH_DB_PATH: the run's SQLite file, for ours' metadata. */
export function dbPath () {
  const path = process.env.BENCH_DB_PATH
  if (!path) throw new Error('BENCH_DB_PATH is required')
  return path
}

/**
 * A failure answered 500, on stderr: the stack, then one line the runner's
 * failure message (the last 500 characters of stderr) will show.
 */
export function logFailure (label, err) {
  const status = err?.$metadata?.httpStatusCode
  const azureStatus = err?.name === 'RestError' ? err.statusCode : undefined
  console.error(err)
  console.error(`${label} failed: ${err?.name ?? 'Error'}: ${err?.message ?? err}${err?.code ? ` (${err.code})` : ''}` +
    `${status ? ` (S3 answered ${status})` : ''}${azureStatus ? ` (Azure answered ${azureStatus})` : ''}`)
}
