#pragma once
#include <chrono>
#include <string>
#include <vector>
#include <cstdint>
#include <stdexcept>
namespace gloo { namespace rendezvous {
// The interface c10d's GlooStore implements (gloo/rendezvous/store.h).
class Store {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout = std::chrono::seconds(30);
  virtual ~Store() = default;
  virtual void set(const std::string& key, const std::vector<char>& data) = 0;
  virtual std::vector<char> get(const std::string& key) = 0;
  virtual void wait(const std::vector<std::string>& keys) = 0;
  virtual void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) = 0;
  virtual bool has_v2_support() { return false; }
  virtual std::vector<std::vector<char>> multi_get(const std::vector<std::string>&) { throw std::runtime_error("x"); }
  virtual void multi_set(const std::vector<std::string>&, const std::vector<std::vector<char>>&) { throw std::runtime_error("x"); }
  virtual void append(const std::string&, const std::vector<char>&) { throw std::runtime_error("x"); }
  virtual int64_t add(const std::string&, int64_t) { throw std::runtime_error("x"); }
};
}}
