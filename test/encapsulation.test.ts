/** The plugin keeps its parser, error format and 404 to its own scope; host hooks still reach its routes. */
import t from 'tap'
import { join } from 'node:path'
import Fastify from 'fastify'
import tus, { TusError } from '../lib/index.js'
import { startServer, tempDir } from './helpers/server.js'
import { OCTET, TUS, send } from './helpers/http.js'
import { head, idOf } from './helpers/tus.js'

t.test('the host app still parses JSON and keeps its error handler and 404', async (t) => {
  const { origin, endpoint } = await startServer(t, {}, (app) => {
    app.post('/api', async (request) => ({ got: request.body }))
    app.get('/boom', async () => { throw new Error('host failure') })
    app.setErrorHandler((error: Error, _request, reply) => {
      void reply.code(418).send({ host: true, message: error.message })
    })
    app.setNotFoundHandler((_request, reply) => {
      void reply.code(404).send({ host404: true })
    })
  })

  const json = await send('POST', `${origin}/api`, { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ a: [1, 2], b: 'x' }) })
  t.equal(json.status, 200, json.text)
  t.same(JSON.parse(json.text), { got: { a: [1, 2], b: 'x' } })
  t.match(String(json.headers['content-type']), /^application\/json/)
  t.equal(json.headers['tus-resumable'], undefined, 'no tus headers outside the prefix')

  const bad = await send('POST', `${origin}/api`, { headers: { 'Content-Type': 'application/json' }, body: '{nope' })
  t.equal(bad.status, 418, 'a JSON parse error goes to the host error handler')
  t.equal(JSON.parse(bad.text).host, true)

  const boom = await send('GET', `${origin}/boom`)
  t.equal(boom.status, 418)
  t.same(JSON.parse(boom.text), { host: true, message: 'host failure' })

  const missing = await send('GET', `${origin}/nowhere`)
  t.equal(missing.status, 404)
  t.same(JSON.parse(missing.text), { host404: true })
  t.equal(missing.headers['tus-resumable'], undefined)

  // inside the prefix, the plugin's own format applies
  const inside = await send('HEAD', `${endpoint}/0123456789abcdef0123456789abcdef`, { headers: TUS })
  t.equal(inside.status, 404)
  t.equal(inside.headers['tus-resumable'], '1.0.0')
  const tusError = await send('POST', endpoint + '/', { headers: { ...TUS } })
  t.equal(tusError.status, 400)
  t.match(String(tusError.headers['content-type']), /^text\/plain/)
  // a JSON body on a tus route is not parsed as JSON
  const jsonToTus = await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '2', 'Content-Type': 'application/json' }, body: '{}' })
  t.equal(jsonToTus.status, 415, 'a creation body must be offset+octet-stream')
})

t.test('a host JSON route added after the plugin still parses JSON', async (t) => {
  const dir = tempDir(t)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(tus, { uploadDir: join(dir, 'uploads'), db: join(dir, 'uploads.db') })
  app.post('/api', async (request) => ({ got: request.body }))
  app.post('/api/text', async (request) => ({ text: request.body }))
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })

  const json = await send('POST', `${origin}/api`, { headers: { 'Content-Type': 'application/json' }, body: '{"n":1}' })
  t.equal(json.status, 200, json.text)
  t.same(JSON.parse(json.text), { got: { n: 1 } })
  const text = await send('POST', `${origin}/api/text`, { headers: { 'Content-Type': 'text/plain' }, body: 'plain words' })
  t.same(JSON.parse(text.text), { text: 'plain words' })
  const bad = await send('POST', `${origin}/api`, { headers: { 'Content-Type': 'application/json' }, body: '{nope' })
  t.equal(bad.status, 400, 'Fastify default error handler for bad JSON')
  t.match(String(bad.headers['content-type']), /^application\/json/)
  t.equal(bad.headers['tus-resumable'], undefined)
  const missing = await send('GET', `${origin}/elsewhere`)
  t.equal(missing.status, 404)
  t.match(String(missing.headers['content-type']), /^application\/json/, "Fastify's default 404 outside the prefix")

  const res = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '1' } })
  t.equal(res.status, 201)
})

t.test('an auth onRequest hook in the registering scope protects every tus route', async (t) => {
  const { app, endpoint } = await startServer(t, {}, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization !== 'Bearer good') {
        return reply.code(401).header('WWW-Authenticate', 'Bearer').type('text/plain').send('unauthorized')
      }
    })
  })
  const auth = { Authorization: 'Bearer good' }

  const denied: Array<[string, string, Record<string, string>]> = [
    ['OPTIONS', endpoint + '/', {}],
    ['POST', endpoint + '/', { ...TUS, 'Upload-Length': '5' }],
    ['HEAD', `${endpoint}/0123456789abcdef0123456789abcdef`, TUS],
    ['PATCH', `${endpoint}/0123456789abcdef0123456789abcdef`, { ...TUS, ...OCTET, 'Upload-Offset': '0' }],
    ['DELETE', `${endpoint}/0123456789abcdef0123456789abcdef`, TUS],
    ['GET', `${endpoint}/0123456789abcdef0123456789abcdef`, {}],
    ['POST', `${endpoint}/0123456789abcdef0123456789abcdef`, { ...TUS, 'X-HTTP-Method-Override': 'DELETE' }]
  ]
  for (const [method, url, headers] of denied) {
    const res = await send(method, url, { headers: { ...headers, Authorization: 'Bearer bad' } })
    t.equal(res.status, 401, `${method} ${url.slice(url.lastIndexOf('/'))}: 401 with a bad token`)
    const none = await send(method, url, { headers })
    t.equal(none.status, 401, `${method}: 401 without a token`)
  }
  t.same(await app.tus.list(), [], 'nothing was created')

  const created = await send('POST', endpoint + '/', { headers: { ...TUS, ...auth, 'Upload-Length': '5' } })
  t.equal(created.status, 201)
  const url = created.headers.location as string
  t.equal((await send('PATCH', url, { headers: { ...TUS, ...OCTET, ...auth, 'Upload-Offset': '0' }, body: 'hello' })).status, 204)
  t.equal((await send('PATCH', url, { headers: { ...TUS, ...OCTET, 'Upload-Offset': '5' }, body: 'x' })).status, 401)
  const get = await send('GET', url, { headers: auth })
  t.equal(get.status, 200)
  t.equal(get.text, 'hello')
})

t.test('per-user access control: owner in metadata, checked in preHandler', async (t) => {
  const { app, endpoint } = await startServer(t, {
    onCreate: ({ request, upload }) => {
      const user = /^Bearer (\w+)$/.exec(request.headers.authorization ?? '')?.[1]
      if (user === undefined) throw new TusError(401, 'who are you')
      return { metadata: { ...upload.metadata, owner: user } }
    }
  }, (app) => {
    app.addHook('preHandler', async (request, reply) => {
      const id = (request.params as { id?: string } | undefined)?.id
      if (id === undefined) return
      const upload = await app.tus.get(id)
      const user = /^Bearer (\w+)$/.exec(request.headers.authorization ?? '')?.[1]
      if (upload !== undefined && upload.metadata.owner !== user) {
        return reply.code(403).type('text/plain').send('not yours')
      }
    })
  })
  const alice = { Authorization: 'Bearer alice' }
  const bob = { Authorization: 'Bearer bob' }

  // a client cannot claim another owner through metadata
  const created = await send('POST', endpoint + '/', {
    headers: { ...TUS, ...alice, 'Upload-Length': '5', 'Upload-Metadata': `owner ${Buffer.from('bob').toString('base64')}` }
  })
  t.equal(created.status, 201)
  const url = created.headers.location as string
  t.equal((await app.tus.get(idOf(url)))?.metadata.owner, 'alice')

  const forbidden = (status: number): boolean => status === 403 || status === 404
  t.ok(forbidden((await send('HEAD', url, { headers: { ...TUS, ...bob } })).status), 'bob cannot HEAD')
  t.ok(forbidden((await send('PATCH', url, { headers: { ...TUS, ...OCTET, ...bob, 'Upload-Offset': '0' }, body: 'bobby' })).status), 'bob cannot PATCH')
  t.ok(forbidden((await send('POST', url, { headers: { ...TUS, ...OCTET, ...bob, 'Upload-Offset': '0', 'X-HTTP-Method-Override': 'PATCH' }, body: 'bobby' })).status), 'nor by method override')
  t.equal((await head(url)).status, 403, 'anonymous cannot HEAD either')
  t.equal((await app.tus.get(idOf(url)))?.offset, 0, 'nothing written by bob')

  const h = await send('HEAD', url, { headers: { ...TUS, ...alice } })
  t.equal(h.status, 200)
  t.match(String(h.headers['upload-metadata']), `owner ${Buffer.from('alice').toString('base64')}`)
  t.equal((await send('PATCH', url, { headers: { ...TUS, ...OCTET, ...alice, 'Upload-Offset': '0' }, body: 'hello' })).status, 204)

  t.ok(forbidden((await send('GET', url, { headers: bob })).status), 'bob cannot GET')
  const download = await send('GET', url, { headers: alice })
  t.equal(download.status, 200)
  t.equal(download.text, 'hello')

  t.ok(forbidden((await send('DELETE', url, { headers: { ...TUS, ...bob } })).status), 'bob cannot DELETE')
  t.ok(await app.tus.get(idOf(url)), 'still there')
  t.equal((await send('DELETE', url, { headers: { ...TUS, ...alice } })).status, 204)
  t.equal(await app.tus.get(idOf(url)), undefined)

  // bob's own upload works for bob
  const mine = await send('POST', endpoint + '/', { headers: { ...TUS, ...bob, 'Upload-Length': '1' } })
  t.equal(mine.status, 201)
  t.equal((await send('HEAD', mine.headers.location as string, { headers: { ...TUS, ...bob } })).status, 200)
  t.equal((await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '1' } })).status, 401, 'onCreate rejects anonymous')
})

t.test('app.tus is visible to the host app (the plugin is not encapsulated)', async (t) => {
  const { app, origin, endpoint } = await startServer(t, {}, (app) => {
    app.get('/count', async () => ({ n: (await app.tus.list()).length }))
  })
  t.ok(app.hasDecorator('tus'))
  await send('POST', endpoint + '/', { headers: { ...TUS, 'Upload-Length': '1' } })
  const res = await send('GET', `${origin}/count`)
  t.same(JSON.parse(res.text), { n: 1 })
})
