export declare const BUILD_DIR: string;
export declare const SOURCE_DIRS: string[];
export declare const STAMP: string;
export declare const ENTRY: string;
export declare function freshBuild(buildDir?: string, sourceDirs?: string[]): string | null;
