// What the program uses of Node and of the `ws` package, declared here so the scratch project
// needs nothing from the registry but the packed client.
declare const process: { env: Record<string, string | undefined>; exitCode?: number };
declare const console: { log(...data: unknown[]): void };

declare module "ws" {
  import type { SocketLike } from "@aktienanalyse/event-client";

  export default class WebSocket implements SocketLike {
    constructor(address: string, options?: { origin?: string; headers?: Record<string, string> });
    readonly readyState: number;
    onopen: SocketLike["onopen"];
    onmessage: SocketLike["onmessage"];
    onclose: SocketLike["onclose"];
    onerror: SocketLike["onerror"];
    send(data: string): void;
    close(code?: number, reason?: string): void;
  }
}
