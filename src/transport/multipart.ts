/** One part of a multipart/form-data body. */
export interface FormPart {
  name: string;
  /** Set for file parts. */
  filename?: string;
  contentType?: string;
  data: Buffer;
}

/**
 * Splits a whole multipart/form-data body (RFC 7578) into its parts. Returns undefined when the content type
 * names no boundary or the body has no part delimited by it.
 */
export function parseMultipart(body: Buffer, contentType: string): FormPart[] | undefined {
  const m = /^multipart\/form-data\s*;.*\bboundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) return undefined;
  const delimiter = Buffer.from(`--${boundary}`);
  const next = Buffer.from(`\r\n--${boundary}`);
  const parts: FormPart[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) return undefined;
  pos += delimiter.length;
  for (;;) {
    // After a delimiter: "--" closes the body, CRLF starts a part.
    if (body.subarray(pos, pos + 2).toString() === '--') break;
    if (body.subarray(pos, pos + 2).toString() !== '\r\n') return undefined;
    const headEnd = body.indexOf('\r\n\r\n', pos + 2);
    if (headEnd < 0) return undefined;
    const end = body.indexOf(next, headEnd + 4);
    if (end < 0) return undefined;
    parts.push(partOf(body.subarray(pos + 2, headEnd).toString('utf8'), body.subarray(headEnd + 4, end)));
    pos = end + next.length;
  }
  return parts;
}

function partOf(head: string, data: Buffer): FormPart {
  const disposition = /^content-disposition:(.*)$/im.exec(head)?.[1] ?? '';
  const filename = /;\s*filename="([^"]*)"/i.exec(disposition)?.[1];
  const contentType = /^content-type:\s*(.+)$/im.exec(head)?.[1]?.trim();
  return {
    name: /;\s*name="([^"]*)"/i.exec(disposition)?.[1] ?? '',
    ...(filename !== undefined ? { filename } : {}),
    ...(contentType ? { contentType } : {}),
    data,
  };
}
