// Types of scripts/console-build.mjs for the TypeScript callers (the console tests).
export declare const CONSOLE_SRC: string;
export declare const CONSOLE_OUT: string;
export declare const BUDGET_GZIP: number;
export interface BundleFile {
  name: string;
  raw: number;
  gzip: number;
}
export declare function newestMtime(path: string): number;
export declare function consoleStale(): boolean;
export declare function bundleSizes(dir?: string): BundleFile[];
export declare function sizeReport(sizes?: BundleFile[]): string;
export declare function buildConsole(opts?: { quiet?: boolean }): Promise<BundleFile[]>;
export declare function buildConsoleIfStale(opts?: { quiet?: boolean }): Promise<boolean>;
