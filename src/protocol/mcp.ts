/**
 * MCP over `{"type":"mcp"}`: the device is the MCP server, we are the client.
 * The firmware answers only numeric ids, so ids are numbers, split in two disjoint ranges:
 * control requests (initialize, tools/list pages) below TOOL_CALL_ID_BASE, tool calls from it upward.
 */
export const MCP_PROTOCOL_VERSION = '2024-11-05';
export const MCP_INITIALIZE_ID = 1;
/** tools/list page n uses id MCP_TOOLS_LIST_ID_BASE + n. */
export const MCP_TOOLS_LIST_ID_BASE = 2;
export const MCP_MAX_TOOL_PAGES = 100;
export const TOOL_CALL_ID_BASE = 1000;

export interface McpTool {
  name: string;
  description?: string;
  inputSchema?: unknown;
}

export function initializeRequest(vision?: { url: string; token: string }): Record<string, unknown> {
  const capabilities: Record<string, unknown> = { roots: { listChanged: true }, sampling: {} };
  if (vision) capabilities.vision = vision;
  return {
    jsonrpc: '2.0',
    id: MCP_INITIALIZE_ID,
    method: 'initialize',
    params: {
      protocolVersion: MCP_PROTOCOL_VERSION,
      capabilities,
      clientInfo: { name: 'linus', version: '1.0.0' },
    },
  };
}

export function toolsListRequest(page: number, cursor?: string): Record<string, unknown> {
  const req: Record<string, unknown> = { jsonrpc: '2.0', id: MCP_TOOLS_LIST_ID_BASE + page, method: 'tools/list' };
  if (cursor) req.params = { cursor };
  return req;
}

export function toolCallRequest(id: number, name: string, args: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args ?? {} } };
}

export function isToolsListId(id: unknown): id is number {
  return typeof id === 'number' && id >= MCP_TOOLS_LIST_ID_BASE && id < MCP_TOOLS_LIST_ID_BASE + MCP_MAX_TOOL_PAGES;
}

export function isToolCallId(id: unknown): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= TOOL_CALL_ID_BASE;
}

/** Reads `result.tools` and `result.nextCursor` of a tools/list reply, skipping malformed entries. */
export function parseToolsPage(result: unknown): { tools: McpTool[]; nextCursor?: string } {
  const r = (result ?? {}) as { tools?: unknown; nextCursor?: unknown };
  const tools: McpTool[] = [];
  if (Array.isArray(r.tools)) {
    for (const t of r.tools) {
      if (t && typeof t === 'object' && typeof (t as McpTool).name === 'string') {
        const { name, description, inputSchema } = t as McpTool;
        tools.push({ name, ...(typeof description === 'string' ? { description } : {}), inputSchema });
      }
    }
  }
  const next = typeof r.nextCursor === 'string' && r.nextCursor.length > 0 ? r.nextCursor : undefined;
  return next ? { tools, nextCursor: next } : { tools };
}
