// Raw node:http baseline: no validation, no database, offsets in memory.
// With BENCH_RAW_FSYNC=1 (the raw-fsync reference), each body is fdatasync-ed
// before its answer; with BENCH_RAW_FASTIFY=1 (raw-fastify), the same server
// runs inside a Fastify app (serveRaw() in common.js).
// POST creates an empty file (and writes its body, if any); PATCH pipes the
// body into the file at the current offset; HEAD answers from memory
// (serveRaw() in common.js).
import fs from 'node:fs'
import { open } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { join } from 'node:path'
import { serveRaw, uploadDir } from './common.js'

const dir = uploadDir()
const FSYNC = process.env.BENCH_RAW_FSYNC === '1'

async function writeBody (req, upload) {
  const out = fs.createWriteStream(join(dir, upload.id), { flags: 'r+', start: upload.offset })
  await pipeline(req, out)
  if (FSYNC) await datasync(join(dir, upload.id))
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

const inFastify = process.env.BENCH_RAW_FASTIFY === '1'
await serveRaw(inFastify ? 'raw-fastify' : 'raw', {
  chunked: true,
  inFastify,
  async create (id, length) {
    await (await open(join(dir, id), 'w')).close()
    return { id, offset: 0, length }
  },
  write: writeBody
})
