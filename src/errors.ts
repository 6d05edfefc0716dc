/**
 * Every error onnx-fit throws is an OnnxFitError with a stable `code`. Messages name the file,
 * tensor, op or option at fault and say what would fix it.
 *
 * | class               | code                  | when                                                   |
 * |---------------------|-----------------------|--------------------------------------------------------|
 * | ModelLoadError      | ERR_MODEL_LOAD        | file missing/truncated/not ONNX, external data problems |
 * | InvalidModelError   | ERR_INVALID_MODEL     | the model is ONNX but inconsistent (bad attrs, opset)   |
 * | UnsupportedOpError  | ERR_UNSUPPORTED_OP    | ops the engine cannot run, all named in one error       |
 * | ShapeMismatchError  | ERR_SHAPE_MISMATCH    | operands of an op do not fit together                   |
 * | InvalidInputError   | ERR_INVALID_INPUT     | user data of the wrong shape, type, or with NaN/Inf     |
 * | InvalidOptionError  | ERR_INVALID_OPTION    | an option value is out of range or of the wrong type    |
 * | AddonLoadError      | ERR_ADDON_NOT_BUILT   | the native addon is missing or failed to load           |
 * | AbortError          | ERR_ABORTED           | an AbortSignal stopped the work                         |
 * | NoGradientError     | ERR_NO_GRADIENT       | a gradient was requested through an op without a rule   |
 * | EngineError         | ERR_ENGINE_INTERNAL   | a bug in onnx-fit (please report it)                    |
 */
export class OnnxFitError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export class ModelLoadError extends OnnxFitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_MODEL_LOAD', message, options);
  }
}

export class InvalidModelError extends OnnxFitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_MODEL', message, options);
  }
}

export interface UnsupportedOpInfo {
  opType: string;
  domain: string;
  count: number;
  nodes: string[];
}

export class UnsupportedOpError extends OnnxFitError {
  readonly ops: UnsupportedOpInfo[];
  constructor(ops: UnsupportedOpInfo[], model?: string) {
    const list = ops
      .map((o) => {
        const shown = o.nodes.slice(0, 5).map((n) => `'${n}'`).join(', ');
        const more = o.nodes.length > 5 ? `, ... ${o.nodes.length - 5} more` : '';
        const dom = o.domain && o.domain !== 'ai.onnx' ? `${o.domain}::` : '';
        return `${dom}${o.opType} x${o.count} (${shown}${more})`;
      })
      .join('; ');
    super(
      'ERR_UNSUPPORTED_OP',
      `${model ? `Model ${model} uses` : 'The model uses'} ${ops.length} op type(s) the onnx-fit engine ` +
        `does not support: ${list}. Export the model without these ops or open an issue asking for them.`,
    );
    this.ops = ops;
  }
}

export class ShapeMismatchError extends OnnxFitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SHAPE_MISMATCH', message, options);
  }
}

export class InvalidInputError extends OnnxFitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_INPUT', message, options);
  }
}

export class InvalidOptionError extends OnnxFitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_OPTION', message, options);
  }
}

export class AddonLoadError extends OnnxFitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ADDON_NOT_BUILT', message, options);
  }
}

export class AbortError extends OnnxFitError {
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super('ERR_ABORTED', message, options);
  }
}

export class NoGradientError extends OnnxFitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NO_GRADIENT', message, options);
  }
}

export class EngineError extends OnnxFitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_ENGINE_INTERNAL', message, options);
  }
}

/**
 * An error thrown in a worker thread arrives structured-cloned: a plain Error whose stack still
 * starts with the class name. Restores the documented class (and so its `code`); anything else is
 * returned as is.
 */
export function restoreWorkerError(e: unknown): unknown {
  if (e instanceof OnnxFitError || !(e instanceof Error)) return e;
  const name = /^(\w+Error): /.exec(e.stack ?? '')?.[1];
  const classes: Record<string, unknown> = {
    ModelLoadError, InvalidModelError, ShapeMismatchError, InvalidInputError, InvalidOptionError, AddonLoadError, AbortError, NoGradientError, EngineError,
  };
  const Cls = name ? classes[name] : undefined;
  if (typeof Cls !== 'function') return e;
  const err = new (Cls as new (m: string, o?: { cause?: unknown }) => OnnxFitError)(e.message, { cause: e });
  err.stack = e.stack;
  return err;
}
