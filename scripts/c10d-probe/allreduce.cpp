// The feasibility check for issue 20 (distributed training on c10d): two
// processes rendezvous through c10d::TCPStore and all-reduce a tensor with
// c10d::ProcessGroupGloo, from the PyTorch 2.11 wheel's libtorch_cpu.so.
#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <chrono>
#include <iostream>
#include <cstdlib>

int main(int argc, char** argv) {
  int rank = std::atoi(argv[1]), world = std::atoi(argv[2]);
  c10d::TCPStoreOptions so;
  so.port = 29517;
  so.isServer = rank == 0;
  so.numWorkers = world;
  so.timeout = std::chrono::seconds(20);
  auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", so);
  auto opts = c10d::ProcessGroupGloo::Options::create();
  opts->timeout = std::chrono::seconds(20);
  opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
  std::vector<at::Tensor> t{torch::full({4}, (float)(rank + 1))};
  pg->allreduce(t)->wait();
  std::cout << "rank " << rank << ": " << t[0] << std::endl;
  return 0;
}
