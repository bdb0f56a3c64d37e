// Command mode: runwarm compiles this file once at registration (g++; add flags under [build]
// in runwarm.toml) and runs the program once per invocation inside a warm sandbox. The payload
// JSON arrives on stdin (and in the file $RUNWARM_ARGS_FILE), each top-level scalar also as
// PARAM_<NAME>. Exit 0 is success; the last line of stdout, if it is JSON, is the result.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>

namespace {

// `s` with what JSON does not allow in a string escaped.
std::string json_chars(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
            out += escaped;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

}  // namespace

int main() {
    // The whole payload is on stdin, for programs that need more than top-level scalars.
    const std::string payload{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    const char* param = std::getenv("PARAM_NAME");
    const std::string name = (param != nullptr && *param != '\0') ? param : "world";
    std::cout << "read " << payload.size() << " bytes of payload\n";
    std::cout << "{\"greeting\": \"hello " << json_chars(name) << "\"}" << std::endl;
    return 0;
}
