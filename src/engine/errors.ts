/** Maps errors thrown by the addon (plain Errors with a `code`) to onnx-fit's error classes. */
import {
  AbortError,
  EngineError,
  InvalidInputError,
  InvalidModelError,
  NoGradientError,
  OnnxFitError,
  ShapeMismatchError,
} from '../errors.js';

const byCode: Record<string, new (message: string, options?: { cause?: unknown }) => OnnxFitError> = {
  ERR_INVALID_MODEL: InvalidModelError,
  ERR_SHAPE_MISMATCH: ShapeMismatchError,
  ERR_INVALID_INPUT: InvalidInputError,
  ERR_ABORTED: AbortError,
  ERR_NO_GRADIENT: NoGradientError,
  ERR_ENGINE_INTERNAL: EngineError,
};

/**
 * Re-throws a native error as the documented class, with a stack that starts at `caller`
 * (the public function the user called) rather than inside the addon glue.
 */
export function nativeError(e: unknown, context: string, caller?: Function): OnnxFitError {
  if (e instanceof OnnxFitError) return e;
  const code = (e as { code?: unknown })?.code;
  const message = e instanceof Error ? e.message : String(e);
  const Cls = (typeof code === 'string' && byCode[code]) || (code === 'ERR_UNSUPPORTED_OP' ? InvalidModelError : EngineError);
  const err = new Cls(`${context}: ${message}`, { cause: e });
  if (caller) Error.captureStackTrace(err, caller);
  return err;
}
