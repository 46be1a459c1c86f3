// BackendFactory::Impl: what a factory holds, shared by the files that implement it
// (model_resolution.cc: open and resolve; backend_factory.cc: the provider walk).
//
// Thread-safety: immutable after construction; safe for concurrent use.
#ifndef KAPSL_SRC_FACTORY_FACTORY_IMPL_H_
#define KAPSL_SRC_FACTORY_FACTORY_IMPL_H_

#include <memory>

#include "kapsl/backend_factory.h"

namespace kapsl {

struct BackendFactory::Impl {
  FactoryOptions options;
  std::shared_ptr<const BackendRegistry> backends;
  DeviceInfo devices;
};

}  // namespace kapsl

#endif  // KAPSL_SRC_FACTORY_FACTORY_IMPL_H_
