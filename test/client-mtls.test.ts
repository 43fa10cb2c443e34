// Mutual TLS: the plugin served over https requiring client certificates from a
// test CA (made with openssl); the client's tls options (ca, cert, key,
// rejectUnauthorized) and how certificate failures are reported.
import t from 'tap'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import Fastify from 'fastify'
import tus from '../lib/index.js'
import { TusClient, TusNetworkError } from '../lib/client/index.js'
import { tempDir } from './helpers/server.js'
import { bytes } from './helpers/http.js'
import { failureOf, sourceFile, storedAt } from './helpers/client-env.js'
import { makePki, type TestPki } from './helpers/client-tls.js'

async function startMtlsServer (t: Parameters<typeof tempDir>[0], pki: TestPki): Promise<{ endpoint: string; uploadDir: string; peers: string[] }> {
  const dir = tempDir(t)
  const peers: string[] = []
  const app = Fastify({
    https: { key: pki.serverKey, cert: pki.serverCert, ca: pki.caCert, requestCert: true, rejectUnauthorized: true }
  })
  app.addHook('onRequest', async (request) => {
    peers.push(String((request.raw.socket as TLSSocket).getPeerCertificate().subject?.CN))
  })
  await app.register(tus, { uploadDir: join(dir, 'uploads'), db: join(dir, 'db.sqlite') })
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return { endpoint: `${origin}/files`, uploadDir: join(dir, 'uploads'), peers }
}

t.test('mTLS', async (t) => {
  const pki = makePki(tempDir(t, 'fastify-tus-pki-'))
  const server = await startMtlsServer(t, pki)
  t.match(server.endpoint, /^https:\/\/127\.0\.0\.1:\d+\/files$/)

  t.test('with the CA and a client certificate: byte-exact, the server saw the client', async (t) => {
    const client = new TusClient({ endpoint: server.endpoint, chunkSize: 64 * 1024, checksum: 'sha256', tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey } })
    t.teardown(() => client.close())
    const { path, content } = sourceFile(t, 300_000, 81)
    const url = await client.upload(path)
    t.match(url, /^https:/)
    t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
    t.ok(server.peers.length > 0 && server.peers.every((cn) => cn === 'test-client'), 'every request came with the client certificate')
  })

  t.test('without a client certificate: refused, not retried', async (t) => {
    const client = new TusClient({ endpoint: server.endpoint, tls: { ca: pki.caCert }, retryDelay: 2000 })
    t.teardown(() => client.close())
    const started = Date.now()
    const error = await failureOf(client.upload(bytes(10, 1)))
    t.ok(error instanceof TusNetworkError, `TusNetworkError: ${error.message}`)
    t.ok(Date.now() - started < 1500, 'a TLS refusal is not retried')
  })

  t.test('without the CA: the server certificate is not trusted, not retried', async (t) => {
    const client = new TusClient({ endpoint: server.endpoint, tls: { cert: pki.clientCert, key: pki.clientKey }, retryDelay: 2000 })
    t.teardown(() => client.close())
    const started = Date.now()
    const error = await failureOf(client.upload(bytes(10, 1)))
    t.ok(error instanceof TusNetworkError, 'TusNetworkError')
    t.match(String((error.cause as { code?: string }).code), /CERT|SELF_SIGNED|UNABLE_TO/, `a certificate code (${(error.cause as { code?: string }).code})`)
    t.ok(Date.now() - started < 1500, 'not retried')
  })

  t.test('rejectUnauthorized: false accepts the unknown server certificate', async (t) => {
    const client = new TusClient({ endpoint: server.endpoint, tls: { rejectUnauthorized: false, cert: pki.clientCert, key: pki.clientKey } })
    t.teardown(() => client.close())
    const content = bytes(5000, 82)
    const url = await client.upload(content)
    t.ok(storedAt(server.uploadDir, url)?.equals(content), 'stored bytes equal the source')
  })
})
