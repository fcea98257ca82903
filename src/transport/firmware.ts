import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../observability/log.js';
import { sendJson } from './http-util.js';

/**
 * Firmware images for OTA, as the reference serves them: `<data>/bin/<board>_<version>.bin` (board = the device's
 * `board.type`, version numeric and dotted). A device is offered the highest version for its board that is newer
 * than its own, within its rollout (devices.yaml `firmware`: `latest`, `none` or a version cap), else its own
 * version, which the firmware takes as "no update". Images are downloaded from Linus, with Range support and a
 * SHA-256 checksum (in the OTA answer and the download's headers).
 */

export interface FirmwareImage {
  file: string;
  board: string;
  version: string;
  size: number;
  mtimeMs: number;
}

export interface FirmwareOffer {
  version: string;
  url: string;
  sha256?: string;
  size?: number;
}

const NAME = /^(.+)_(\d+(?:\.\d+)*)\.bin$/;

/** `<board>_<version>.bin`, or undefined for any other name (not offered). */
export function parseFirmwareName(file: string): { board: string; version: string } | undefined {
  const m = NAME.exec(file);
  return m && /^[A-Za-z0-9._-]+$/.test(file) ? { board: m[1]!, version: m[2]! } : undefined;
}

/**
 * Numeric dotted comparison, as the firmware compares versions: "1.10" > "1.9", "1.2" == "1.2.0". A part that
 * does not start with digits counts as 0 ("2.0.0-rc1" is 2.0.0).
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((p) => parseInt(p, 10) || 0);
  const pb = b.split('.').map((p) => parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

export class FirmwareStore {
  /** The listing, re-read when the directory changes (its mtime), so dropping a file in needs no restart. */
  #listing: { mtimeMs: number; images: FirmwareImage[] } | undefined;
  /** SHA-256 per file version (name, size, mtime), computed once. */
  #hashes = new Map<string, Promise<string>>();
  #warned = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly log: Logger,
    /** A device's rollout from devices.yaml (`latest` when unset). */
    private readonly rolloutOf: (deviceId: string) => string | undefined = () => undefined,
  ) {}

  /** Asynchronous, so that an OTA storm never stalls the loop on the disk. */
  async images(): Promise<FirmwareImage[]> {
    let dirStat;
    try {
      dirStat = await stat(this.dir);
    } catch {
      return []; // no bin/ directory: nothing to offer
    }
    if (this.#listing?.mtimeMs === dirStat.mtimeMs) return this.#listing.images;
    const images: FirmwareImage[] = [];
    for (const file of await readdir(this.dir)) {
      const parsed = parseFirmwareName(file);
      if (!parsed) {
        if (!this.#warned.has(file)) {
          this.#warned.add(file);
          this.log.warn({ file }, 'ignoring a file in bin/: firmware images are named <board>_<version>.bin');
        }
        continue;
      }
      try {
        const st = await stat(join(this.dir, file));
        if (st.isFile()) images.push({ file, ...parsed, size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // Removed while listing.
      }
    }
    this.#listing = { mtimeMs: dirStat.mtimeMs, images };
    return images;
  }

  /**
   * The image as it is on disk now: a file copied over an existing name leaves the directory's mtime alone, so
   * the listing may hold its old size.
   */
  async #current(file: string): Promise<FirmwareImage | undefined> {
    const listed = (await this.images()).find((i) => i.file === file);
    if (!listed) return undefined;
    try {
      const st = await stat(join(this.dir, file));
      return st.isFile() ? { ...listed, size: st.size, mtimeMs: st.mtimeMs } : undefined;
    } catch {
      // Removed since it was listed: there is no such image any more.
      return undefined;
    }
  }

  /**
   * What OTA answers for a device: the newest image for its board above its version and within `rollout`, or
   * its own version with no URL. `downloadBase` is the download URL prefix (…/ota/download/).
   */
  async offer(
    device: { id: string; board: string | undefined; version: string },
    downloadBase: string,
  ): Promise<FirmwareOffer> {
    const none: FirmwareOffer = { version: device.version, url: '' };
    const rollout = this.rolloutOf(device.id) ?? 'latest';
    if (!device.board || rollout === 'none') return none;
    const board = device.board.toLowerCase();
    let best: FirmwareImage | undefined;
    for (const img of await this.images()) {
      if (img.board.toLowerCase() !== board || compareVersions(img.version, device.version) <= 0) continue;
      if (rollout !== 'latest' && compareVersions(img.version, rollout) > 0) continue;
      if (!best || compareVersions(img.version, best.version) > 0) best = img;
    }
    best = best && (await this.#current(best.file));
    if (!best) return none;
    return {
      version: best.version,
      url: `${downloadBase}${encodeURIComponent(best.file)}`,
      sha256: await this.#sha256(best),
      size: best.size,
    };
  }

  /** GET/HEAD of one image: whole, or one byte range (206); 416 for a range outside the file. */
  async serve(req: IncomingMessage, res: ServerResponse, file: string): Promise<void> {
    const img = parseFirmwareName(file) ? await this.#current(file) : undefined;
    if (!img) {
      sendJson(res, 404, { success: false, error: `no firmware image ${file}` });
      return;
    }
    const sha256 = await this.#sha256(img);
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
      etag: `"${sha256}"`,
      'x-checksum-sha256': sha256,
      digest: `sha-256=${Buffer.from(sha256, 'hex').toString('base64')}`,
      'content-disposition': `attachment; filename="${img.file}"`,
    };
    const range = parseRange(req.headers.range, img.size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${img.size}` });
      res.end();
      return;
    }
    const [start, end] = range ?? [0, img.size - 1];
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'content-length': Math.max(0, end - start + 1),
      ...(range ? { 'content-range': `bytes ${start}-${end}/${img.size}` } : {}),
    });
    if (req.method === 'HEAD' || img.size === 0) {
      res.end();
      return;
    }
    // A client that goes away mid-download ends the pipeline; the file stream is closed with it.
    await pipeline(createReadStream(join(this.dir, img.file), { start, end }), res).catch(() => res.destroy());
  }

  #sha256(img: FirmwareImage): Promise<string> {
    const key = `${img.file}:${img.size}:${img.mtimeMs}`;
    let hash = this.#hashes.get(key);
    if (!hash) {
      hash = (async () => {
        const h = createHash('sha256');
        for await (const chunk of createReadStream(join(this.dir, img.file))) h.update(chunk as Buffer);
        return h.digest('hex');
      })();
      hash.catch(() => this.#hashes.delete(key));
      // One hash per file name: a replaced file's old hash goes.
      for (const k of this.#hashes.keys()) if (k.startsWith(`${img.file}:`)) this.#hashes.delete(k);
      this.#hashes.set(key, hash);
    }
    return hash;
  }
}

/**
 * One `bytes=` range (`a-b`, `a-`, `-n`), clamped to the file. Several ranges, or a header that is not a byte
 * range, are ignored (the whole file is sent, as RFC 9110 allows).
 */
export function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    // A last byte before the first is not a range (ignored); a first byte past the end is unsatisfiable (below).
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start >= size ? 'unsatisfiable' : [start, end];
}
