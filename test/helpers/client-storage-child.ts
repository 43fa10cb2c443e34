/**
 * A separate process hammering one URL storage, for the multi-process test:
 *   node <ts loader> client-storage-child.ts <file|sqlite> <path> <name> <count>
 * saves `count` entries under fingerprints `<name>-<i>`, then removes the odd ones.
 */
import { FileURLStorage, SQLiteURLStorage, type URLStorage } from '../../lib/client/index.js'

const [kind, path, name, count] = process.argv.slice(2)
const storage: URLStorage = kind === 'sqlite' ? new SQLiteURLStorage(path!) : new FileURLStorage(path!)
const n = Number(count)
for (let i = 0; i < n; i++) {
  await storage.save(`${name}-${i}`, { uploadUrl: `http://x/files/${name}-${i}`, partialUrls: null, size: i, metadata: { i: String(i) }, createdAt: new Date().toISOString() })
}
for (let i = 1; i < n; i += 2) await storage.remove(`${name}-${i}`, `http://x/files/${name}-${i}`)
