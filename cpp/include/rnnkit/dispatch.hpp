// Choosing among the per-ISA kernel builds.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "rnnkit/kernels.hpp"

namespace rnnkit {

std::vector<std::string> compiled_isas();   // built into this binary
std::vector<std::string> available_isas();  // built and supported by this CPU
bool isa_supported(const std::string& name);
const Kernels& find_isa(const std::string& name);  // throws std::invalid_argument
void set_isa(const std::string& name);             // throws std::invalid_argument
std::string active_isa_reason();
std::string amx_status();  // whether the amx kernels can run here, and why (show_config)

}  // namespace rnnkit
