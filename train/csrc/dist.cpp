// The collectives mixco's data-parallel trainer needs, on PyTorch's own
// distributed engine (c10d) from the libtorch that tch links: rendezvous
// through c10d::TCPStore, collectives through c10d::ProcessGroupGloo (CPU and
// CUDA tensors). Every function catches what c10d throws and returns it as a
// message (the caller frees it with mixco_dist_free_message); NULL is success.
//
// The wheel ships c10d's headers but not gloo's, which ProcessGroupGloo.hpp
// includes: gloo-stub/ declares the few gloo names that header uses (all
// behind pointers, so the class layouts are unchanged; the code is in
// libtorch_cpu.so). Only ATen is included, not torch/torch.h (~27 s a file).
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

struct MixcoDist {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  int rank;
  int world;
};

static char* message(const std::exception& e) { return strdup(e.what()); }

#define GUARD(...)                               \
  try {                                          \
    __VA_ARGS__;                                 \
    return nullptr;                              \
  } catch (const std::exception& e) {            \
    return message(e);                           \
  } catch (...) {                                \
    return strdup("unknown C++ exception");      \
  }

extern "C" {

void mixco_dist_free_message(char* m) { free(m); }

// Joins the group: rank 0 serves the store unless `client_only` (torchrun's
// agent serves it then), every rank connects to host:port.
char* mixco_dist_new(const char* host, int port, int rank, int world, int timeout_ms, int client_only,
                     const char* prefix, MixcoDist** out) {
  GUARD({
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = rank == 0 && !client_only;
    so.numWorkers = client_only ? std::nullopt : std::optional<std::size_t>(world);
    so.waitWorkers = !client_only;
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), so);
    auto store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    auto opts = c10d::ProcessGroupGloo::Options::create();
    opts->timeout = timeout;
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(std::string(host)));
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
    *out = new MixcoDist{pg, rank, world};
  })
}

void mixco_dist_drop(MixcoDist* d) { delete d; }

// A store server alone, as torchrun's agent serves one (for tests of the
// ranks' client-only mode).
char* mixco_dist_serve_store(int port, int timeout_ms, void** out) {
  GUARD({
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = true;
    so.waitWorkers = false;
    so.timeout = std::chrono::milliseconds(timeout_ms);
    *out = new c10::intrusive_ptr<c10d::TCPStore>(c10::make_intrusive<c10d::TCPStore>(std::string("127.0.0.1"), so));
  })
}

void mixco_dist_drop_store(void* s) { delete static_cast<c10::intrusive_ptr<c10d::TCPStore>*>(s); }

// In place; op 0 = sum, 1 = max.
char* mixco_dist_all_reduce(MixcoDist* d, at::Tensor* t, int op) {
  GUARD({
    std::vector<at::Tensor> ts{*t};
    c10d::AllreduceOptions o;
    o.reduceOp = op == 1 ? c10d::ReduceOp(c10d::ReduceOp::MAX) : c10d::ReduceOp(c10d::ReduceOp::SUM);
    d->pg->allreduce(ts, o)->wait();
  })
}

// Every rank's `t` (same shape), concatenated along dim 0 in rank order.
char* mixco_dist_all_gather(MixcoDist* d, at::Tensor* t, at::Tensor** out) {
  GUARD({
    at::Tensor in = t->contiguous();
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < d->world; r++) outs[0].push_back(at::empty_like(in));
    std::vector<at::Tensor> ins{in};
    d->pg->allgather(outs, ins)->wait();
    *out = new at::Tensor(at::cat(outs[0], 0));
  })
}

// In place: rank `root`'s values everywhere.
char* mixco_dist_broadcast(MixcoDist* d, at::Tensor* t, int root) {
  GUARD({
    std::vector<at::Tensor> ts{*t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    d->pg->broadcast(ts, o)->wait();
  })
}

char* mixco_dist_barrier(MixcoDist* d, int timeout_ms) {
  GUARD({
    c10d::BarrierOptions o;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    d->pg->barrier(o)->wait(std::chrono::milliseconds(timeout_ms));
  })
}

}  // extern "C"
