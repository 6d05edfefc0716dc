// Errors the engine raises. The addon maps `code` to the JS error classes of src/errors.ts.
#pragma once

#include <stdexcept>
#include <string>

namespace fit {

enum class ErrorCode : int {
  Internal = 0,          // ERR_ENGINE_INTERNAL: a bug; should never reach a user
  InvalidGraph = 1,      // ERR_INVALID_MODEL: the graph description is inconsistent
  UnsupportedOp = 2,     // ERR_UNSUPPORTED_OP
  ShapeMismatch = 3,     // ERR_SHAPE_MISMATCH: an op's operands do not fit together
  InvalidInput = 4,      // ERR_INVALID_INPUT: a user-supplied tensor is wrong (dims/type)
  InvalidAttribute = 5,  // ERR_INVALID_MODEL: an attribute value the op cannot use
  Aborted = 6,           // ERR_ABORTED
  NoGradient = 7,        // ERR_NO_GRADIENT
};

class EngineError : public std::runtime_error {
 public:
  EngineError(ErrorCode code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace fit
