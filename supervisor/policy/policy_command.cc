// `fault policy validate FILE...` and `fault policy show FILE [--json]`.
#include <google/protobuf/util/json_util.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "supervisor/cli/commands.h"
#include "supervisor/exec/table_compiler.h"
#include "supervisor/policy/loader.h"

namespace fault::cli {
namespace {

struct ShowOptions {
  std::string file;
  bool json = false;
};

}  // namespace

void RegisterPolicyCommands(CLI::App& app) {
  CLI::App* policy =
      app.add_subcommand("policy", "Validate and show policy files")
          ->require_subcommand(1);

  auto files = std::make_shared<std::vector<std::string>>();
  CLI::App* validate =
      policy->add_subcommand("validate",
                             "Check policy files (YAML or JSON); print every "
                             "error with file:line:column");
  validate->add_option("files", *files, "Policy files")->required();
  validate->callback([files] {
    int status = 0;
    for (const std::string& file : *files) {
      absl::StatusOr<fault::v1::PolicySet> set =
          fault::policy::LoadPolicyFiles({file});
      if (!set.ok()) {
        std::cerr << set.status().message() << "\n";
        status = 1;
        continue;
      }
      // The table's bounds (policies, targets, syscall faults, partitions,
      // intervals) are the compiler's: ask it, so that validate never
      // accepts what `fault exec` refuses.
      if (absl::Status fits = fault::exec::CheckCompiles(*set); !fits.ok()) {
        std::cerr << file << ": " << fits.message() << "\n";
        status = 1;
        continue;
      }
      const int n = set->policies_size();
      std::cout << file << ": " << n << (n == 1 ? " policy" : " policies")
                << " OK\n";
    }
    // Names must also be unique across the files given together.
    if (status == 0 && files->size() > 1) {
      absl::StatusOr<fault::v1::PolicySet> all =
          fault::policy::LoadPolicyFiles(*files);
      if (!all.ok()) {
        std::cerr << all.status().message() << "\n";
        status = 1;
      } else if (absl::Status fits = fault::exec::CheckCompiles(*all);
                 !fits.ok()) {
        // Each file fits alone; together (as `fault exec --policy a
        // --policy b` loads them) they may not.
        std::cerr << "the files together: " << fits.message() << "\n";
        status = 1;
      }
    }
    ExitStatus() = status;
  });

  auto show = std::make_shared<ShowOptions>();
  CLI::App* show_cmd = policy->add_subcommand(
      "show",
      "Print policies in canonical form (how their units were understood)");
  show_cmd->add_option("file", show->file, "Policy file")->required();
  show_cmd->add_flag("--json", show->json, "Print the canonical proto as JSON");
  show_cmd->callback([show] {
    absl::StatusOr<fault::v1::PolicySet> set =
        fault::policy::LoadPolicyFiles({show->file});
    if (!set.ok()) {
      std::cerr << set.status().message() << "\n";
      ExitStatus() = 1;
      return;
    }
    if (show->json) {
      google::protobuf::util::JsonPrintOptions options;
      options.add_whitespace = true;
      options.preserve_proto_field_names = true;
      std::string json;
      auto status =
          google::protobuf::util::MessageToJsonString(*set, &json, options);
      if (!status.ok()) {
        std::cerr << "fault policy show: " << status.ToString() << "\n";
        ExitStatus() = 1;
        return;
      }
      std::cout << json;
      if (json.empty() || json.back() != '\n') std::cout << "\n";
    } else {
      std::cout << fault::policy::FormatPolicySet(*set);
    }
    ExitStatus() = 0;
  });
}

}  // namespace fault::cli
