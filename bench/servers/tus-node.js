// @tus/server with @tus/file-store on plain node:http.
import http from 'node:http'
import { Server } from '@tus/server'
import { FileStore } from '@tus/file-store'
import { announce, onStop, uploadDir } from './common.js'

const tusServer = new Server({ path: '/files', datastore: new FileStore({ directory: uploadDir() }) })
const server = http.createServer((req, res) => { tusServer.handle(req, res) })
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => announce(server.address().port))
onStop(() => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
