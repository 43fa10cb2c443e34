// Raw node:http baseline: no validation, no database, offsets in memory.
// With BENCH_RAW_FSYNC=1 (the raw-fsync reference), each body is fdatasync-ed
// before its answer.
// POST creates an empty file (and writes its body, if any); PATCH pipes the
// body into the file at the current offset; HEAD answers from memory.
import http from 'node:http'
import fs from 'node:fs'
import { open } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { announce, onStop, uploadDir } from './common.js'

const dir = uploadDir()
const FSYNC = process.env.BENCH_RAW_FSYNC === '1'
const PREFIX = '/files/'
const uploads = new Map() // id -> { offset, length }

async function writeBody (req, id, upload) {
  const out = fs.createWriteStream(join(dir, id), { flags: 'r+', start: upload.offset })
  await pipeline(req, out)
  if (FSYNC) await datasync(join(dir, id))
  upload.offset += out.bytesWritten
}

// raw-fsync: the bytes are on disk before the answer, the simplest server that
// promises the offset it answers survives a power loss, as ours does by default.
// fdatasync flushes the file, whichever descriptor asks.
async function datasync (path) {
  const handle = await open(path, 'r')
  try {
    await handle.datasync()
  } finally {
    await handle.close()
  }
}

const hasBody = (req) => req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0

async function handle (req, res) {
  const id = req.url.startsWith(PREFIX) ? req.url.slice(PREFIX.length) : ''
  if (req.method === 'POST' && (req.url === PREFIX || req.url === '/files')) {
    const newId = randomBytes(16).toString('hex')
    await (await open(join(dir, newId), 'w')).close()
    const upload = { offset: 0, length: Number(req.headers['upload-length'] ?? 0) }
    uploads.set(newId, upload)
    const headers = { Location: `http://${req.headers.host}${PREFIX}${newId}`, 'Tus-Resumable': '1.0.0' }
    if (hasBody(req)) {
      await writeBody(req, newId, upload)
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
    await writeBody(req, id, upload)
    res.writeHead(204, { 'Upload-Offset': String(upload.offset), 'Tus-Resumable': '1.0.0' }).end()
  } else if (req.method === 'HEAD') {
    res.writeHead(200, { 'Upload-Offset': String(upload.offset), 'Upload-Length': String(upload.length), 'Tus-Resumable': '1.0.0', 'Cache-Control': 'no-store' }).end()
  } else {
    req.resume()
    res.writeHead(405).end()
  }
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    console.error(err)
    if (!res.headersSent) res.writeHead(500).end()
    else res.destroy()
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => announce(server.address().port))
onStop(() => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
