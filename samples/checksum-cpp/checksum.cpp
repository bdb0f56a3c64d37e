// Command mode: compiled once per version by g++ (runtimes/cpp.toml), run once per request.
// The text comes from PARAM_TEXT (top-level payload strings arrive as PARAM_<NAME>); when that
// is absent (a string over 32 KiB is left out of the environment) it is read from the payload
// JSON in args.json, or from stdin. Prints a line for people, then the result as the last line
// of stdout, in JSON. Exit 0 is success; 2 means the payload has no "text" string.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>

namespace {

// ---- checksums ----

uint32_t crc32(const std::string& data) {
    static const auto table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    uint32_t crc = 0xFFFFFFFFu;
    for (unsigned char b : data) crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

uint32_t fnv1a32(const std::string& data) {
    uint32_t h = 0x811C9DC5u;
    for (unsigned char b : data) h = (h ^ b) * 0x01000193u;
    return h;
}

uint64_t fnv1a64(const std::string& data) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char b : data) h = (h ^ b) * 0x100000001B3ull;
    return h;
}

// SHA-256 (FIPS 180-4).
class Sha256 {
public:
    std::string hex(const std::string& data) {
        std::string msg = data;
        const uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
        msg.push_back(static_cast<char>(0x80));
        while (msg.size() % 64 != 56) msg.push_back('\0');
        for (int i = 7; i >= 0; --i) msg.push_back(static_cast<char>((bits >> (i * 8)) & 0xFF));
        for (size_t off = 0; off < msg.size(); off += 64) block(reinterpret_cast<const unsigned char*>(msg.data() + off));
        std::string out;
        char buf[9];
        for (uint32_t v : h_) {
            std::snprintf(buf, sizeof buf, "%08x", v);
            out += buf;
        }
        return out;
    }

private:
    static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

    void block(const unsigned char* p) {
        static constexpr uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = (uint32_t(p[i * 4]) << 24) | (uint32_t(p[i * 4 + 1]) << 16) | (uint32_t(p[i * 4 + 2]) << 8) | p[i * 4 + 3];
        for (int i = 16; i < 64; ++i) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
        for (int i = 0; i < 64; ++i) {
            uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        const uint32_t add[8] = {a, b, c, d, e, f, g, h};
        for (int i = 0; i < 8; ++i) h_[i] += add[i];
    }

    uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
};

// ---- a small JSON reader: finds the top-level "text" string of the payload ----

class JsonReader {
public:
    explicit JsonReader(const std::string& s) : s_(s) {}

    // The value of `key` in the top-level object, if it is a string.
    std::optional<std::string> top_level_string(const std::string& key) {
        ws();
        if (!eat('{')) return std::nullopt;
        ws();
        if (eat('}')) return std::nullopt;
        while (true) {
            ws();
            auto name = string();
            if (!name) return std::nullopt;
            ws();
            if (!eat(':')) return std::nullopt;
            ws();
            if (*name == key && peek() == '"') return string();
            if (!skip_value()) return std::nullopt;
            ws();
            if (eat(',')) continue;
            return std::nullopt;
        }
    }

private:
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    bool eat(char c) {
        if (peek() != c) return false;
        ++i_;
        return true;
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
    }

    static void utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    bool hex4(uint32_t& v) {
        if (i_ + 4 > s_.size()) return false;
        v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= c - '0';
            else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
            else return false;
        }
        return true;
    }

    std::optional<std::string> string() {
        if (!eat('"')) return std::nullopt;
        std::string out;
        while (i_ < s_.size()) {
            char c = s_[i_++];
            if (c == '"') return out;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) return std::nullopt;
            char e = s_[i_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    uint32_t cp;
                    if (!hex4(cp)) return std::nullopt;
                    if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(i_, 2, "\\u") == 0) {
                        size_t save = i_;
                        i_ += 2;
                        uint32_t lo;
                        if (hex4(lo) && lo >= 0xDC00 && lo < 0xE000) {
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        } else {
                            i_ = save;
                        }
                    }
                    utf8(out, cp);
                    break;
                }
                default: return std::nullopt;
            }
        }
        return std::nullopt;
    }

    bool skip_value() {
        ws();
        char c = peek();
        if (c == '"') return string().has_value();
        if (c == '{' || c == '[') {
            const char close = c == '{' ? '}' : ']';
            ++i_;
            ws();
            if (eat(close)) return true;
            while (true) {
                ws();
                if (close == '}') {
                    if (!string()) return false;
                    ws();
                    if (!eat(':')) return false;
                }
                if (!skip_value()) return false;
                ws();
                if (eat(close)) return true;
                if (!eat(',')) return false;
            }
        }
        size_t start = i_;  // a number, true, false or null
        while (i_ < s_.size() && std::string(",}] \t\r\n").find(s_[i_]) == std::string::npos) ++i_;
        return i_ > start;
    }

    const std::string& s_;
    size_t i_ = 0;
};

std::string slurp(std::istream& in) {
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string hex(uint64_t v, int digits) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%0*llx", digits, static_cast<unsigned long long>(v));
    return buf;
}

}  // namespace

int main() {
    std::string text;
    std::string source;
    if (const char* param = std::getenv("PARAM_TEXT")) {
        text = param;
        source = "PARAM_TEXT";
    } else {
        std::string payload;
        const char* args = std::getenv("RUNWARM_ARGS_FILE");
        std::ifstream file(args ? args : "args.json", std::ios::binary);
        if (file) {
            payload = slurp(file);
            source = "args.json";
        } else {
            payload = slurp(std::cin);
            source = "stdin";
        }
        auto found = JsonReader(payload).top_level_string("text");
        if (!found) {
            std::cerr << "the payload has no \"text\" string (expected {\"text\": \"...\"})\n";
            return 2;
        }
        text = *found;
    }

    const std::string sha = Sha256().hex(text);
    std::cout << "checksums of " << text.size() << " bytes (from " << source << ")\n";
    std::cout << "{\"bytes\":" << text.size() << ",\"crc32\":\"" << hex(crc32(text), 8) << "\",\"fnv1a_32\":\""
              << hex(fnv1a32(text), 8) << "\",\"fnv1a_64\":\"" << hex(fnv1a64(text), 16) << "\",\"sha256\":\"" << sha
              << "\",\"source\":\"" << source << "\"}" << std::endl;
    return 0;
}
