// Keras logs and History in the API's messages, and back.
#ifndef KILN_SERVER_SERVICE_LOGS_H_
#define KILN_SERVER_SERVICE_LOGS_H_

#include "core/train/trainer.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "kiln/v1/jobs.pb.h"

namespace kiln::server {

inline google::protobuf::RepeatedPtrField<v1::Metric> ToMetrics(const Logs& logs) {
  google::protobuf::RepeatedPtrField<v1::Metric> out;
  for (const auto& [name, value] : logs) {
    v1::Metric* m = out.Add();
    m->set_name(name);
    m->set_value(value);
  }
  return out;
}

inline google::protobuf::RepeatedPtrField<v1::EpochLogs> ToEpochLogs(const History& history) {
  google::protobuf::RepeatedPtrField<v1::EpochLogs> out;
  for (size_t i = 0; i < history.epochs.size(); ++i) {
    v1::EpochLogs* e = out.Add();
    e->set_epoch(history.epochs[i]);
    *e->mutable_logs() = ToMetrics(history.logs[i]);
  }
  return out;
}

inline History HistoryFrom(const google::protobuf::RepeatedPtrField<v1::EpochLogs>& epochs) {
  History history;
  for (const v1::EpochLogs& e : epochs) {
    history.epochs.push_back(e.epoch());
    Logs& logs = history.logs.emplace_back();
    for (const v1::Metric& m : e.logs()) logs.emplace_back(m.name(), m.value());
  }
  return history;
}

}  // namespace kiln::server

#endif  // KILN_SERVER_SERVICE_LOGS_H_
