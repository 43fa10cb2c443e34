// The tusClient Fastify plugin: app.tusClient is a TusClient with the registered options.
import t from 'tap'
import Fastify from 'fastify'
import { TusClient, tusClient } from '../lib/client/index.js'
import { startServer } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { storedAt } from './helpers/client-env.js'

t.test('register, then upload through app.tusClient from a route', async (t) => {
  const server = await startServer(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(tusClient, { endpoint: server.endpoint, chunkSize: 8192, checksum: 'sha256', headers: { 'X-From': 'relay' } })
  t.ok(app.tusClient instanceof TusClient, 'decorated')
  t.equal(app.tusClient.options.chunkSize, 8192, 'with the registered options')

  const content = bytes(50_000, 51)
  app.post('/relay', async () => ({ url: await app.tusClient.upload(content, { metadata: { filename: 'relay.bin' } }) }))
  const res = await app.inject({ method: 'POST', url: '/relay' })
  t.equal(res.statusCode, 200)
  const { url } = res.json() as { url: string }
  t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
  t.equal((await app.tusClient.getUploadInfo(url)).metadata.filename, 'relay.bin')
})

t.test('bad options fail at register', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(tusClient, { endpoint: 'not a url' }) }, /endpoint/)
})
