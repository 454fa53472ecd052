export declare function buildCli(outdir?: string): Promise<string>;
