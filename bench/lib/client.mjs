// A minimal OCI distribution client over node:http with a keep-alive agent. The same code pushes
// and pulls against every registry, so the client's cost is identical on both sides.
import http from 'node:http';
import { once } from 'node:events';
import { MANIFEST_ACCEPT } from './content.mjs';

export class RegistryClient {
  /** @param {string} base `http://127.0.0.1:PORT` */
  constructor(base, { maxSockets = 16, timeoutMs = 60_000, headers = {} } = {}) {
    this.base = base;
    /** Sent with every request (e.g. `authorization`). */
    this.headers = headers;
    this.timeoutMs = timeoutMs;
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
    /** What pushBlob did, for the report: exists / mounted / uploaded, and bytes sent. */
    this.stats = { exists: 0, mounted: 0, uploaded: 0, bytesUploaded: 0 };
  }

  close() {
    this.agent.destroy();
  }

  resetStats() {
    this.stats = { exists: 0, mounted: 0, uploaded: 0, bytesUploaded: 0 };
  }

  /**
   * One request. `body`: a Buffer, or an iterable of Buffers (streamed with backpressure; give
   * `contentLength` or it is sent chunked). With `discard` the response body is counted, not kept.
   */
  async request(method, path, { headers = {}, body, contentLength, discard = false } = {}) {
    const url = new URL(path, this.base);
    const h = { ...this.headers, ...headers };
    if (Buffer.isBuffer(body)) h['content-length'] = body.length;
    else if (body && contentLength !== undefined) h['content-length'] = contentLength;
    else if (!body && (method === 'PUT' || method === 'POST' || method === 'PATCH'))
      h['content-length'] = 0;
    const req = http.request(url, { method, headers: h, agent: this.agent });
    // A server that stops answering fails the scenario instead of hanging the bench.
    req.setTimeout(this.timeoutMs, () =>
      req.destroy(new Error(`${method} ${path}: no progress for ${this.timeoutMs} ms`)),
    );
    const response = new Promise((resolve, reject) => {
      req.once('error', reject);
      req.once('response', async (res) => {
        try {
          let bytes = 0;
          const parts = [];
          for await (const chunk of res) {
            bytes += chunk.length;
            if (!discard) parts.push(chunk);
          }
          resolve({
            status: res.statusCode,
            headers: res.headers,
            bytes,
            body: discard ? undefined : Buffer.concat(parts),
          });
        } catch (err) {
          reject(err);
        }
      });
    });
    if (Buffer.isBuffer(body)) req.end(body);
    else if (body) {
      let aborted = false;
      // The server may answer (an error) before the body is sent: stop writing then.
      const stop = () => (aborted = true);
      response.then(stop, stop);
      for (const chunk of body) {
        if (aborted) break;
        if (!req.write(chunk)) await Promise.race([once(req, 'drain'), response]);
      }
      req.end();
    } else req.end();
    return response;
  }

  async expect(status, method, path, opts) {
    const r = await this.request(method, path, opts);
    const ok = Array.isArray(status) ? status.includes(r.status) : r.status === status;
    if (!ok) {
      const text = r.body ? r.body.toString('utf8').slice(0, 300) : '';
      throw new Error(`${method} ${path}: HTTP ${r.status}, expected ${status}: ${text}`);
    }
    return r;
  }

  /** Resolves a Location header (absolute for Distribution, relative for Meridian) to a path. */
  location(r, extra = {}) {
    const loc = r.headers.location;
    if (!loc) throw new Error(`no Location header (HTTP ${r.status})`);
    const u = new URL(loc, this.base);
    for (const [k, v] of Object.entries(extra)) u.searchParams.set(k, v);
    return u.pathname + u.search;
  }

  async blobExists(repo, digest) {
    const r = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`);
    return r.status === 200;
  }

  /** POST (optionally a mount) → session path, or `null` when the mount succeeded (201). */
  async startUpload(repo, mount) {
    const q = mount ? `?mount=${mount.digest}&from=${encodeURIComponent(mount.from)}` : '';
    const r = await this.expect(mount ? [201, 202] : 202, 'POST', `/v2/${repo}/blobs/uploads/${q}`);
    return r.status === 201 ? null : this.location(r);
  }

  /** Uploads a blob: in-memory ones as POST + PUT-with-body, streamed ones as POST + PATCH + PUT. */
  async uploadBlob(repo, blob, session) {
    const path = session ?? (await this.startUpload(repo));
    if (blob.bytes) {
      await this.expect(201, 'PUT', withDigest(path, blob.digest), {
        body: blob.bytes,
        headers: { 'content-type': 'application/octet-stream' },
      });
    } else {
      const r = await this.expect(202, 'PATCH', path, {
        body: blob.chunks(),
        contentLength: blob.size,
        headers: { 'content-type': 'application/octet-stream' },
      });
      await this.expect(201, 'PUT', this.location(r, { digest: blob.digest }));
    }
    this.stats.uploaded++;
    this.stats.bytesUploaded += blob.size;
  }

  /**
   * Pushes a blob the way docker/containerd do: HEAD in the target repository (skip if present),
   * then a cross-repository mount when the blob is known elsewhere, else an upload.
   */
  async pushBlob(repo, blob, { mountFrom } = {}) {
    if (await this.blobExists(repo, blob.digest)) {
      this.stats.exists++;
      return 'exists';
    }
    if (mountFrom && mountFrom !== repo) {
      const session = await this.startUpload(repo, { digest: blob.digest, from: mountFrom });
      if (session === null) {
        this.stats.mounted++;
        return 'mounted';
      }
      await this.uploadBlob(repo, blob, session);
      return 'uploaded';
    }
    await this.uploadBlob(repo, blob);
    return 'uploaded';
  }

  async putManifest(repo, ref, manifest) {
    await this.expect(201, 'PUT', `/v2/${repo}/manifests/${ref}`, {
      body: manifest.bytes,
      headers: { 'content-type': manifest.mediaType },
    });
  }

  /** Blobs in parallel (as real clients do), then the manifest. */
  async pushImage(repo, tag, image, opts) {
    await Promise.all([image.config, ...image.layers].map((b) => this.pushBlob(repo, b, opts)));
    await this.putManifest(repo, tag, image.manifest);
  }

  /** GET the manifest, then config and layers in parallel, discarding bytes. Returns bytes read. */
  async pullImage(repo, tag) {
    const m = await this.expect(200, 'GET', `/v2/${repo}/manifests/${tag}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    const manifest = JSON.parse(m.body.toString('utf8'));
    const blobs = [manifest.config, ...manifest.layers];
    const sizes = await Promise.all(blobs.map((d) => this.getBlob(repo, d.digest, d.size)));
    return m.bytes + sizes.reduce((a, b) => a + b, 0);
  }

  async getBlob(repo, digest, expectedSize) {
    const r = await this.expect(200, 'GET', `/v2/${repo}/blobs/${digest}`, { discard: true });
    if (expectedSize !== undefined && r.bytes !== expectedSize) {
      throw new Error(`GET blob ${digest}: ${r.bytes} bytes, expected ${expectedSize}`);
    }
    return r.bytes;
  }
}

function withDigest(path, digest) {
  return `${path}${path.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}
