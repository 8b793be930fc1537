// RequestFuzzer: structure-aware random API requests for the service fuzz test. It fills
// messages field by field through protobuf reflection - small, negative, huge and non-finite
// numbers, Keras strings, path tricks, and the names and ids harvested from earlier responses -
// and mutates valid requests in a few places, so that requests get past parsing and reach
// deep into the handlers.
#ifndef KILN_TESTS_SERVICE_REQUEST_FUZZER_H_
#define KILN_TESTS_SERVICE_REQUEST_FUZZER_H_

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace kiln::testing {

class RequestFuzzer {
 public:
  using Descriptor = google::protobuf::Descriptor;
  using FieldDescriptor = google::protobuf::FieldDescriptor;
  using Message = google::protobuf::Message;
  using Reflection = google::protobuf::Reflection;

  explicit RequestFuzzer(uint32_t seed) : rng_(seed) {}

  // Strings and ids seen in responses become candidates for later requests.
  void Harvest(const Message& message) {
    const Reflection* r = message.GetReflection();
    std::vector<const FieldDescriptor*> fields;
    r->ListFields(message, &fields);
    for (const FieldDescriptor* f : fields) {
      const int n = f->is_repeated() ? r->FieldSize(message, f) : 1;
      for (int i = 0; i < n; ++i) {
        switch (f->cpp_type()) {
          case FieldDescriptor::CPPTYPE_STRING: {
            std::string s =
                f->is_repeated() ? r->GetRepeatedString(message, f, i) : r->GetString(message, f);
            if (!s.empty() && s.size() < 48 && f->type() != FieldDescriptor::TYPE_BYTES) {
              Remember(std::move(s), names_);
            }
            break;
          }
          case FieldDescriptor::CPPTYPE_INT64:
            if (f->name() == "id") {
              Remember(
                  f->is_repeated() ? r->GetRepeatedInt64(message, f, i) : r->GetInt64(message, f),
                  ids_);
            }
            break;
          case FieldDescriptor::CPPTYPE_MESSAGE:
            Harvest(f->is_repeated() ? r->GetRepeatedMessage(message, f, i)
                                     : r->GetMessage(message, f));
            break;
          default:
            break;
        }
      }
    }
  }

  void Fill(Message* message, int depth = 0) {
    const Descriptor* d = message->GetDescriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      // Session ids are almost always right, so the rest of the request gets looked at.
      if (f->name() != "session_id" && !Chance(depth == 0 ? 0.6 : 0.4)) continue;
      if (f->containing_oneof() != nullptr && !Chance(0.3)) continue;
      FillField(message, f, depth);
    }
  }

  // Changes 1-3 places of a valid request: a field set to a random value, cleared, filled
  // at random, or a repeated field grown or shrunk.
  void Mutate(Message* message) {
    for (int n = Pick(1, 3); n > 0; --n) {
      std::vector<std::pair<Message*, const FieldDescriptor*>> places;
      CollectPlaces(message, &places);
      if (places.empty()) return;
      auto [target, f] = places[Pick(0, int(places.size()) - 1)];
      const Reflection* r = target->GetReflection();
      const int action = Pick(0, 9);
      if (action == 0) {
        r->ClearField(target, f);
      } else if (f->is_repeated() && action <= 2 && r->FieldSize(*target, f) > 0) {
        r->RemoveLast(target, f);
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated() &&
                 r->HasField(*target, f) && action <= 6) {
        Mutate(r->MutableMessage(target, f));
      } else {
        if (!f->is_repeated()) r->ClearField(target, f);
        FillField(target, f, 1);
      }
    }
  }

  void set_session(std::string session) { session_ = std::move(session); }

 private:
  // Every field of `message` and of the messages set in it.
  void CollectPlaces(Message* message,
                     std::vector<std::pair<Message*, const FieldDescriptor*>>* places) {
    const Descriptor* d = message->GetDescriptor();
    const Reflection* r = message->GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      places->emplace_back(message, f);
      if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
      if (f->is_repeated()) {
        for (int k = 0; k < r->FieldSize(*message, f); ++k) {
          CollectPlaces(r->MutableRepeatedMessage(message, f, k), places);
        }
      } else if (r->HasField(*message, f)) {
        CollectPlaces(r->MutableMessage(message, f), places);
      }
    }
  }

  void FillField(Message* message, const FieldDescriptor* f, int depth) {
    const Reflection* r = message->GetReflection();
    const bool session_field = f->name() == "session_id";
    const int count = f->is_repeated() ? Pick(0, 4) : 1;
    auto put = [f](auto set, auto add) { f->is_repeated() ? add() : set(); };
    for (int k = 0; k < count; ++k) {
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32:
          put([&] { r->SetInt32(message, f, int32_t(Int())); },
              [&] { r->AddInt32(message, f, int32_t(Int())); });
          break;
        case FieldDescriptor::CPPTYPE_INT64: {
          const int64_t v = Chance(0.5) && !ids_.empty() ? Any(ids_) : Int();
          put([&] { r->SetInt64(message, f, v); }, [&] { r->AddInt64(message, f, v); });
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT32:
        case FieldDescriptor::CPPTYPE_UINT64:
          break;  // the API has none
        case FieldDescriptor::CPPTYPE_FLOAT:
          put([&] { r->SetFloat(message, f, float(Real())); },
              [&] { r->AddFloat(message, f, float(Real())); });
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE:
          put([&] { r->SetDouble(message, f, Real()); }, [&] { r->AddDouble(message, f, Real()); });
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          put([&] { r->SetBool(message, f, Chance(0.5)); },
              [&] { r->AddBool(message, f, Chance(0.5)); });
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const int v =
              Chance(0.9)
                  ? f->enum_type()->value(Pick(0, f->enum_type()->value_count() - 1))->number()
                  : Pick(-3, 40);
          put([&] { r->SetEnumValue(message, f, v); }, [&] { r->AddEnumValue(message, f, v); });
          break;
        }
        case FieldDescriptor::CPPTYPE_STRING: {
          const std::string v = session_field && Chance(0.95) ? session_ : String(f);
          put([&] { r->SetString(message, f, v); }, [&] { r->AddString(message, f, v); });
          break;
        }
        case FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth >= 6) break;
          Fill(f->is_repeated() ? r->AddMessage(message, f) : r->MutableMessage(message, f),
               depth + 1);
          break;
      }
    }
  }

  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  int Pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  // Candidates in the order first seen: the same seed gives the same requests.
  template <typename T>
  static void Remember(T value, std::vector<T>& pool) {
    if (std::find(pool.begin(), pool.end(), value) == pool.end()) pool.push_back(std::move(value));
  }
  template <typename T>
  const T& Any(const std::vector<T>& pool) {
    return pool[Pick(0, int(pool.size()) - 1)];
  }

  int64_t Int() {
    const int kind = Pick(0, 9);
    if (kind < 6) return Pick(-2, 10);
    if (kind < 8) return Pick(0, 400);
    static constexpr int64_t kExtremes[] = {int64_t{1} << 20,
                                            int64_t{1} << 31,
                                            std::numeric_limits<int32_t>::max(),
                                            std::numeric_limits<int32_t>::min(),
                                            std::numeric_limits<int64_t>::max(),
                                            std::numeric_limits<int64_t>::min(),
                                            -1000000};
    return kExtremes[Pick(0, 6)];
  }

  double Real() {
    static constexpr double kValues[] = {0.0,
                                         0.5,
                                         1.0,
                                         -1.0,
                                         0.001,
                                         0.999,
                                         1e-8,
                                         1e30,
                                         -1e30,
                                         2.0,
                                         3.0,
                                         100,
                                         std::numeric_limits<double>::infinity(),
                                         std::numeric_limits<double>::quiet_NaN()};
    return kValues[Pick(0, 13)];
  }

  std::string String(const FieldDescriptor* f) {
    if (f->type() == FieldDescriptor::TYPE_BYTES) {
      std::string bytes(Chance(0.5) ? Pick(0, 16) : size_t{4} * Pick(0, 300), '\0');
      for (char& c : bytes) c = char(Pick(0, 255));
      return bytes;
    }
    if (!names_.empty() && Chance(0.4)) return Any(names_);
    static const char* kWords[] = {"",
                                   "same",
                                   "valid",
                                   "causal",
                                   "relu",
                                   "softmax",
                                   "linear",
                                   "channels_last",
                                   "channels_first",
                                   "glorot_uniform",
                                   "zeros",
                                   "he_normal",
                                   "l2",
                                   "max_norm",
                                   "adam",
                                   "sgd",
                                   "Adam",
                                   "rmsprop",
                                   "accuracy",
                                   "mse",
                                   "sparse_categorical_crossentropy",
                                   "categorical_crossentropy",
                                   "x",
                                   "y",
                                   "x0",
                                   "x1",
                                   "npy",
                                   "raw",
                                   "idx",
                                   "csv",
                                   "fashion_mnist",
                                   "fashion_mnist:train",
                                   "fashion_mnist:test",
                                   "../../etc/passwd",
                                   "/etc/passwd",
                                   "a:1",
                                   "a:-1",
                                   "dense",
                                   "conv2d",
                                   "model",
                                   "%s%n",
                                   "job-1",
                                   "nonexistent"};
    return kWords[Pick(0, int(std::size(kWords)) - 1)];
  }

  std::mt19937 rng_;
  std::string session_;
  std::vector<std::string> names_;
  std::vector<int64_t> ids_;
};

}  // namespace kiln::testing

#endif  // KILN_TESTS_SERVICE_REQUEST_FUZZER_H_
