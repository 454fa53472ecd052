export declare const CHROMIUM_DIR: string;
export declare function vulkanEnvFix(env?: NodeJS.ProcessEnv): { LD_LIBRARY_PATH: string } | null;
