// TensorProto decoding, the form every tensor in a request takes.
#include <cstdint>

#include "core/io/tensor_proto.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::v1::TensorProto proto;
  if (!proto.ParseFromArray(data, static_cast<int>(size))) return 0;
  kiln::ScopedMemoryAccount scope(kiln::fuzz::InputAccount());
  try {
    absl::StatusOr<kiln::Tensor> tensor = kiln::DecodeTensor(proto, "tensor", int64_t{1} << 22);
    if (tensor.ok()) {
      // What decodes encodes back to the same shape.
      const kiln::v1::TensorProto again = kiln::EncodeTensor(*tensor);
      if (again.shape_size() != proto.shape_size()) __builtin_trap();
    }
  } catch (const kiln::MemoryExhausted&) {
  }
  return 0;
}
