#include "starlark/lib/module.h"

#include <utility>

namespace fault::starlark {

LibraryModule::LibraryModule(std::string name, StringDict members)
    : name_(std::move(name)), members_(std::move(members)) {
  for (auto& [k, v] : members_) starlark::Freeze(v);
}

Value LibraryModule::Attr(Thread&, std::string_view name) {
  auto it = members_.find(name);
  return it == members_.end() ? Value() : it->second;
}

std::vector<std::string> LibraryModule::AttrNames() const {
  std::vector<std::string> names;
  names.reserve(members_.size());
  for (auto& [k, v] : members_) names.push_back(k);  // std::map: sorted
  return names;
}

Value NewModule(std::string name, StringDict members) {
  Value m = NewHost<LibraryModule>(std::move(name), std::move(members));
  Freeze(m);
  return m;
}

}  // namespace fault::starlark
