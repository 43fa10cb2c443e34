/** Types of azurite.mjs (plain JavaScript, shared with test/azure-pass.mjs). */
export declare const AZURITE_ACCOUNT: string
export declare const AZURITE_KEY: string
export declare function azuriteConnectionString (port: number): string
export declare function azuriteInstalled (): boolean
export interface Azurite {
  /** The development account's connection string for this instance. */
  connectionString: string
  port: number
  /** Its temp workspace (removed when it stops). */
  location: string
  /** Stops Azurite and removes its workspace (once; later calls wait for the first). */
  stop (): Promise<void>
}
export declare function startAzurite (options?: { timeout?: number }): Promise<Azurite>
