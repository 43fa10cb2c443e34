/**
 * Fastify's own register options `logLevel` and `logSerializers` apply to the
 * plugin's routes (the plugin shares the host's scope, so they are passed on to
 * the scope of its routes), while the host's routes keep their own level.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import Fastify from 'fastify'
import tus from '../lib/index.js'
import { tempDir } from './helpers/server.js'
import { TUS, send } from './helpers/http.js'

function logLines (): { stream: Writable; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { stream, lines }
}

t.test('logLevel on register quietens the tus routes only', async (t) => {
  const dir = tempDir(t)
  const { stream, lines } = logLines()
  const app = Fastify({ logger: { level: 'info', stream } })
  t.teardown(() => app.close())
  await app.register(tus, { uploadDir: join(dir, 'uploads'), db: join(dir, 'db.sqlite'), logLevel: 'warn' })
  app.get('/health', async () => ({ ok: true }))
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })

  t.equal((await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '1' } })).status, 201)
  t.equal((await send('GET', `${origin}/health`)).status, 200)
  const urls = lines.filter((l) => l.msg === 'incoming request').map((l) => (l.req as { url: string }).url)
  t.same(urls, ['/health'], 'the tus route logged nothing at info; the host route did')
})
