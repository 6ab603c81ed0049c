#pragma once
#include <chrono>
namespace gloo {
// Declarations only: the class lives in libtorch_cpu.so; c10d's header calls this.
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}
