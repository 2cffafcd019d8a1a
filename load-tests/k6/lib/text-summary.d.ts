/** Types of `text-summary.js` for the tests (k6 reads the plain JavaScript). */
export declare function textSummary(data: unknown, opts?: { indent?: string; enableColors?: boolean }): string;
export declare function formatTime(ms: number, unit: string): string;
export declare function formatData(bytes: number): string;
