/**
 * A rotation campaign's defaults, apart from campaign.ts so the CLI's help can name them cheaply.
 */
export const DEFAULT_JOURNAL = ".tensorseal-rewrap-journal.jsonl";
export const DEFAULT_CONCURRENCY = 8;
