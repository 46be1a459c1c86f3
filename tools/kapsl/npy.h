// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0) as kapsl Tensors.
//
// Every dtype NumPy can store in a .npy without pickling is read: bool, int8..int64,
// uint8..uint64, float16/32/64, fixed-width unicode ('<U', UTF-32, converted to UTF-8)
// and fixed-width bytes ('S'), in either byte order and either memory order (Fortran
// arrays are transposed to C order). Object arrays ('O') are pickles and are rejected.
// bfloat16 has no NumPy dtype: it is written as float32 (exactly representable). Strings
// are written as '<U' when all are valid UTF-8, else as '|S' (bytes kept as they are);
// as in NumPy, trailing NULs of an element are not kept.
//
// Thread-safety: the functions are safe for concurrent use without external
// synchronization.
#ifndef KAPSL_TOOLS_KAPSL_NPY_H_
#define KAPSL_TOOLS_KAPSL_NPY_H_

#include <string>
#include <string_view>

#include "kapsl/tensor.h"

namespace kapsl::cli {

// Parses .npy bytes. Throws Error(kInvalidInput) naming `what` (a file name, for messages)
// and the problem: bad magic, unsupported version, malformed header, unsupported descr,
// truncated or oversized data.
Tensor npy_parse(std::string_view bytes, std::string_view what = "npy data");

// Serialises a tensor as .npy (version 1.0, or 2.0 when the header needs it).
std::string npy_serialize(const Tensor& tensor);

// File helpers. Throw Error(kNotFound) if the file cannot be opened, kInvalidInput as
// npy_parse does, kBackend if writing fails.
Tensor npy_load(const std::string& path);
void npy_save(const std::string& path, const Tensor& tensor);

}  // namespace kapsl::cli

#endif  // KAPSL_TOOLS_KAPSL_NPY_H_
