/** CORS: preflights and exposed headers inside the plugin's scope, configurable or off. */
import t from 'tap'
import { startServer } from './helpers/server.js'
import { TUS, create, send } from './helpers/http.js'

const list = (value: unknown): string[] => String(value ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)

const preflight = async (url: string, origin: string) => send('OPTIONS', url, {
  headers: { Origin: origin, 'Access-Control-Request-Method': 'PATCH', 'Access-Control-Request-Headers': 'tus-resumable,upload-offset' }
})

t.test('default: preflight allows any origin, PATCH and the tus headers', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10' })
  for (const target of [url, endpoint + '/']) {
    const res = await preflight(target, 'https://app.example')
    t.ok(res.status >= 200 && res.status < 300, `preflight ${target}: 2xx (${res.status})`)
    t.ok(res.headers['access-control-allow-origin'] === '*' || res.headers['access-control-allow-origin'] === 'https://app.example', 'Allow-Origin')
    t.ok(list(res.headers['access-control-allow-methods']).includes('patch'), 'Allow-Methods includes PATCH')
    const allowed = list(res.headers['access-control-allow-headers'])
    for (const name of ['upload-offset', 'tus-resumable', 'upload-length', 'upload-metadata', 'upload-concat', 'upload-checksum', 'authorization']) {
      t.ok(allowed.includes(name), `Allow-Headers includes ${name}`)
    }
    t.equal(res.headers['access-control-max-age'], '86400')
  }
})

t.test('default: a normal request with Origin gets exposed headers', async (t) => {
  const { endpoint } = await startServer(t)
  const res = await send('POST', endpoint + '/', { headers: { ...TUS, Origin: 'https://app.example', 'Upload-Length': '10' } })
  t.equal(res.status, 201)
  t.equal(res.headers['access-control-allow-origin'], '*')
  const exposed = list(res.headers['access-control-expose-headers'])
  for (const name of ['location', 'upload-offset', 'upload-length', 'tus-resumable', 'upload-expires', 'upload-metadata']) {
    t.ok(exposed.includes(name), `Expose-Headers includes ${name}`)
  }
  const h = await send('HEAD', res.headers.location as string, { headers: { ...TUS, Origin: 'https://app.example' } })
  t.equal(h.status, 200)
  t.ok(list(h.headers['access-control-expose-headers']).includes('upload-offset'), 'HEAD exposes Upload-Offset')
})

t.test('a plain OPTIONS without Origin is tus discovery', async (t) => {
  const { endpoint } = await startServer(t)
  const res = await send('OPTIONS', endpoint + '/')
  t.equal(res.status, 204)
  t.equal(res.headers['tus-version'], '1.0.0')
  t.ok(list(res.headers['tus-extension']).includes('creation'))
})

t.test('cors.origin restricts the allowed origin', async (t) => {
  const { endpoint } = await startServer(t, { cors: { origin: 'https://a.example' } })
  const ok = await preflight(endpoint + '/', 'https://a.example')
  t.ok(ok.status >= 200 && ok.status < 300, `allowed preflight is 2xx (${ok.status})`)
  t.equal(ok.headers['access-control-allow-origin'], 'https://a.example', 'allowed origin echoed')
  t.ok(list(ok.headers['access-control-allow-methods']).includes('patch'))

  const post = await send('POST', endpoint + '/', { headers: { ...TUS, Origin: 'https://a.example', 'Upload-Length': '1' } })
  t.equal(post.status, 201)
  t.equal(post.headers['access-control-allow-origin'], 'https://a.example')
  t.ok(list(post.headers['access-control-expose-headers']).includes('location'))

  const bad = await preflight(endpoint + '/', 'https://evil.example')
  t.not(bad.headers['access-control-allow-origin'], 'https://evil.example', 'other origin not echoed')
  t.not(bad.headers['access-control-allow-origin'], '*', 'no wildcard either')
  t.equal(bad.headers['access-control-allow-origin'], undefined, 'no Allow-Origin at all for other origins')
  const badPost = await send('POST', endpoint + '/', { headers: { ...TUS, Origin: 'https://evil.example', 'Upload-Length': '1' } })
  t.not(badPost.headers['access-control-allow-origin'], 'https://evil.example')
  t.not(badPost.headers['access-control-allow-origin'], '*')
})

t.test('cors: false leaves CORS to the host app', async (t) => {
  const { endpoint } = await startServer(t, { cors: false })
  const pre = await preflight(endpoint + '/', 'https://app.example')
  const post = await send('POST', endpoint + '/', { headers: { ...TUS, Origin: 'https://app.example', 'Upload-Length': '1' } })
  t.equal(post.status, 201)
  for (const res of [pre, post]) {
    const cors = Object.keys(res.headers).filter((name) => name.startsWith('access-control-'))
    t.same(cors, [], 'no Access-Control-* headers')
  }
  // the OPTIONS route still answers discovery
  t.equal(pre.status, 204)
  t.equal(pre.headers['tus-version'], '1.0.0')
})

t.test('cors: false lets the host app add its own CORS headers', async (t) => {
  const { endpoint } = await startServer(t, { cors: false }, (app) => {
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers.origin === 'https://host.example') {
        reply.header('Access-Control-Allow-Origin', 'https://host.example')
        reply.header('Access-Control-Expose-Headers', 'Location, Upload-Offset')
      }
    })
  })
  const post = await send('POST', endpoint + '/', { headers: { ...TUS, Origin: 'https://host.example', 'Upload-Length': '1' } })
  t.equal(post.status, 201)
  t.equal(post.headers['access-control-allow-origin'], 'https://host.example')
  t.equal(post.headers['access-control-expose-headers'], 'Location, Upload-Offset')
})

t.test('extra allowedHeaders are allowed on preflight', async (t) => {
  const { endpoint } = await startServer(t, { cors: { allowedHeaders: ['X-Custom'], maxAge: 60 } })
  const res = await preflight(endpoint + '/', 'https://app.example')
  t.ok(list(res.headers['access-control-allow-headers']).includes('x-custom'))
  t.ok(list(res.headers['access-control-allow-headers']).includes('upload-offset'), 'tus headers still allowed')
  t.equal(res.headers['access-control-max-age'], '60')
})

t.test('error replies carry the CORS headers too, so a browser can read them', async (t) => {
  const { endpoint } = await startServer(t)
  const url = await create(endpoint, { 'Upload-Length': '10' })
  const res = await send('PATCH', url, {
    headers: { ...TUS, Origin: 'https://app.example', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '5' }, body: 'abc'
  })
  t.equal(res.status, 409)
  t.equal(res.headers['upload-offset'], '0')
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.ok(list(res.headers['access-control-expose-headers']).includes('upload-offset'))
  const missing = await send('HEAD', `${endpoint}/0123456789abcdef0123456789abcdef`, { headers: { ...TUS, Origin: 'https://app.example' } })
  t.equal(missing.status, 404)
  t.equal(missing.headers['access-control-allow-origin'], '*')
})
