// Layer-spec validation and building: CreateLayer on any LayerSpec, then a call on a small
// input shape taken from the spec's bytes.
#include <cstdint>
#include <vector>

#include "core/layers/registry.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  kiln::v1::LayerSpec spec;
  if (!spec.ParseFromArray(data + 3, static_cast<int>(size - 3))) return 0;
  kiln::ScopedMemoryAccount scope(kiln::fuzz::InputAccount());
  try {
    absl::StatusOr<std::unique_ptr<kiln::Layer>> layer = kiln::CreateLayer(spec, 1);
    if (!layer.ok()) return 0;
    // (None, d1, ..., dk): rank 2 to 4, dimensions 1 to 16.
    std::vector<int64_t> dims = {-1};
    for (int i = 0; i < 1 + data[0] % 3; ++i) dims.push_back(1 + (data[1 + i % 2] >> i) % 16);
    const kiln::Shape shape(dims);
    absl::StatusOr<std::vector<kiln::Shape>> outputs = (*layer)->OutputShapes({shape});
    if (outputs.ok()) (void)(*layer)->BuildIfNeeded({shape});
  } catch (const kiln::MemoryExhausted&) {
  }
  return 0;
}
