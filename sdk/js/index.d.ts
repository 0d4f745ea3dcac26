/** The tasks (HF_TASK values) this package validates; aliases sentiment-analysis, ner and conversational are accepted too. */
export type Task =
  | "feature-extraction" | "fill-mask" | "image-classification" | "image-segmentation"
  | "object-detection" | "question-answering" | "summarization" | "text-classification"
  | "text-generation" | "text2text-generation" | "token-classification" | "translation"
  | "zero-shot-classification" | "zero-shot-image-classification"
  | "sentiment-analysis" | "ner" | "conversational";

/** The toolkit's request envelope; each task's schema says what `inputs` and `parameters` hold. */
export interface Request {
  inputs?: unknown;
  parameters?: Record<string, unknown> | null;
  [key: string]: unknown;
}

/** A payload the schema refuses: `path` is the JSON path of the offending value ("$.parameters.top_k"). */
export class ValidationError extends Error {
  task: string;
  path: string;
  detail: string;
}

/** Throws ValidationError if `payload` is not a valid request body for `task`. */
export function validate(task: Task, payload: unknown): asserts payload is Request;
/** Throws ValidationError if `body` is not a valid response of `task`. */
export function validateResponse(task: Task, body: unknown): void;
/** Whether `payload` is a valid request body for `task`. */
export function isValid(task: Task, payload: unknown): payload is Request;
/** The tasks this package validates, without aliases. */
export function tasks(): string[];
