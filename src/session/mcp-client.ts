import {
  initializeRequest,
  isToolCallId,
  isToolsListId,
  MCP_INITIALIZE_ID,
  MCP_MAX_TOOL_PAGES,
  MCP_TOOLS_LIST_ID_BASE,
  parseToolsPage,
  toolCallRequest,
  toolsListRequest,
  TOOL_CALL_ID_BASE,
  type McpTool,
} from '../protocol/mcp.js';
import type { Scope } from './scope.js';

interface PendingCall {
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  cancel: () => void;
}

export class McpCallError extends Error {
  override name = 'McpCallError';
}

/**
 * The MCP client side of one connection: initialize, page through tools/list, call tools.
 * Control requests and tool calls use disjoint numeric id ranges, so a reply is never matched to the wrong request.
 */
export class McpClient {
  #tools: McpTool[] = [];
  #page = 0;
  #started = false;
  #ready = false;
  #nextCallId = TOOL_CALL_ID_BASE;
  #pending = new Map<number, PendingCall>();

  constructor(
    private readonly scope: Scope,
    private readonly send: (payload: Record<string, unknown>) => boolean,
    private readonly onToolsReady: (tools: readonly McpTool[]) => void = () => {},
  ) {
    scope.add(() => this.#failAll(new McpCallError('connection closed')));
  }

  get tools(): readonly McpTool[] {
    return this.#tools;
  }

  /** True once the whole tool list has arrived. */
  get ready(): boolean {
    return this.#ready;
  }

  get started(): boolean {
    return this.#started;
  }

  /** Sends `initialize` once; a repeated hello does not restart the exchange. */
  start(vision?: { url: string; token: string }): void {
    if (this.#started) return;
    this.#started = true;
    this.send(initializeRequest(vision));
  }

  /** Handles one JSON-RPC payload from the device. Returns false when it was not a reply we expect. */
  handle(payload: { id?: unknown; method?: unknown; result?: unknown; error?: unknown }): boolean {
    if (typeof payload.method === 'string') return false; // device-initiated requests/notifications: none are used
    const id = payload.id;
    if (id === MCP_INITIALIZE_ID) {
      if (payload.error !== undefined) return true;
      this.#page = 0;
      this.#tools = [];
      this.send(toolsListRequest(0));
      return true;
    }
    if (isToolsListId(id)) {
      if (id !== MCP_TOOLS_LIST_ID_BASE + this.#page || payload.error !== undefined) {
        if (payload.error !== undefined) this.#finishTools();
        return true;
      }
      const page = parseToolsPage(payload.result);
      for (const t of page.tools) if (!this.#tools.some((x) => x.name === t.name)) this.#tools.push(t);
      if (page.nextCursor && this.#page + 1 < MCP_MAX_TOOL_PAGES) {
        this.#page++;
        this.send(toolsListRequest(this.#page, page.nextCursor));
      } else this.#finishTools();
      return true;
    }
    if (isToolCallId(id)) {
      const call = this.#pending.get(id);
      if (!call) return false;
      this.#pending.delete(id);
      call.cancel();
      if (payload.error !== undefined) {
        const msg = (payload.error as { message?: unknown })?.message;
        call.reject(new McpCallError(typeof msg === 'string' ? msg : 'tool call failed'));
      } else call.resolve(payload.result);
      return true;
    }
    return false;
  }

  /** Calls a device tool; rejects on timeout, on error, on abort, or when the connection closes. */
  callTool(name: string, args: unknown, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    const id = this.#nextCallId++;
    return new Promise((resolve, reject) => {
      if (this.scope.closed) return reject(new McpCallError('connection closed'));
      const onAbort = () => finish(new McpCallError('tool call aborted'));
      const cancelTimer = this.scope.timeout(timeoutMs, () =>
        finish(new McpCallError(`tool call timed out after ${timeoutMs} ms`)),
      );
      const cancel = () => {
        cancelTimer();
        signal?.removeEventListener('abort', onAbort);
      };
      const finish = (err: Error) => {
        if (!this.#pending.delete(id)) return;
        cancel();
        reject(err);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, { resolve, reject, cancel });
      if (!this.send(toolCallRequest(id, name, args))) finish(new McpCallError('could not send the tool call'));
    });
  }

  #finishTools(): void {
    if (this.#ready) return;
    this.#ready = true;
    this.onToolsReady(this.#tools);
  }

  #failAll(err: Error): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of all) {
      p.cancel();
      p.reject(err);
    }
  }
}
