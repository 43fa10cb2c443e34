/** A throwaway certificate authority, server and client certificates, made with the openssl command. */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TestPki {
  dir: string
  caCert: Buffer
  serverKey: Buffer
  serverCert: Buffer
  clientKey: Buffer
  clientCert: Buffer
  paths: { caCert: string; clientKey: string; clientCert: string }
}

const openssl = (dir: string, args: string[]): void => {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
}

/** CA "fastify-tus test CA"; server cert for 127.0.0.1 and localhost; client cert CN=test-client. */
export function makePki (dir: string): TestPki {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=fastify-tus test CA'])
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n')
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n')
  for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'test-client']] as const) {
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`])
  }
  const read = (file: string): Buffer => readFileSync(join(dir, file))
  return {
    dir,
    caCert: read('ca.crt'),
    serverKey: read('server.key'),
    serverCert: read('server.crt'),
    clientKey: read('client.key'),
    clientCert: read('client.crt'),
    paths: { caCert: join(dir, 'ca.crt'), clientKey: join(dir, 'client.key'), clientCert: join(dir, 'client.crt') }
  }
}
